//! The portable-redis pipeline as a library: `main.rs` dispatches the command
//! line to these modules, and the integration tests call them directly.

pub mod advisories;
pub mod archive;
pub mod audit;
pub mod bench;
pub mod build;
pub mod debian;
pub mod dist;
pub mod flags;
pub mod fsutil;
pub mod glibc;
pub mod host;
pub mod host_cmd;
pub mod layout;
pub mod lockfile;
pub mod patch;
pub mod patch_cmd;
pub mod pins;
pub mod project;
pub mod repro;
pub mod run;
pub mod sandbox;
pub mod sbom;
pub mod security;
pub mod server;
pub mod smoke;
pub mod strip;
pub mod tarball;
pub mod test_upstream;
pub mod toolchain;
pub mod torture;
pub mod treehash;
pub mod unwinder;
pub mod upgrade;
pub mod vendor;
pub mod verify;
