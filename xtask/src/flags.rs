//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::sandbox::SandboxKind;

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Portable Redis releases for x86_64 Linux from glibc 2.11 up"
)]
pub struct Cli {
    /// State folder for downloads, unpacked sources, toolchain and build cache
    /// [default: target/portable, or $PORTABLE_REDIS_STATE].
    #[arg(long, global = true, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, verify, package and smoke-test a release into dist/.
    Dist(DistArgs),
    /// Fetch and verify the pinned source trees.
    Vendor(SourceArgs),
    /// Apply a Redis line's patch series to a fresh copy of its pinned tree.
    Patch(PatchArgs),
    /// Check ELF binaries against the glibc baseline (exit 0 pass, 1 violations, 2 unusable input).
    Verify(VerifyArgs),
    /// Print the tree hash of a folder (for writing pins).
    Hash { dir: PathBuf },
    /// Pin a new Redis or OpenSSL version and rehearse its patch series
    /// (changes nothing until --write).
    Upgrade(UpgradeArgs),
}

#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Redis line or version (`7.0`, `8.0.2`); default: every pinned line for
    /// `vendor`, the first pin otherwise.
    #[arg(long, value_name = "LINE")]
    pub redis: Option<String>,
    /// A folder holding source archives by file name (also $PORTABLE_REDIS_MIRROR).
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Do not use the network origins (upstream addresses, apt).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct DistArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Build isolation; `none` is an explicit opt-out recorded in BUILDINFO.json.
    #[arg(long, value_enum, default_value_t = SandboxKind::Bwrap)]
    pub sandbox: SandboxKind,
    /// Use this zig binary instead of the pinned wheel (its version must match the pin).
    #[arg(long, value_name = "PATH")]
    pub zig: Option<PathBuf>,
    /// Where releases are written.
    #[arg(long, value_name = "DIR", default_value = "dist")]
    pub out: PathBuf,
    /// Parallel compile jobs [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Skip the smoke test of the packaged binaries.
    #[arg(long)]
    pub no_smoke: bool,
}

#[derive(Debug, Args)]
pub struct PatchArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Rehearse only: report, per patch and hunk, whether it applies cleanly,
    /// with offset or fuzz, or fails; change nothing.
    #[arg(long)]
    pub check: bool,
    /// Use this series folder instead of the pin's.
    #[arg(long, value_name = "DIR")]
    pub series: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the report as JSON (schema: docs/verify-report.schema.json).
    #[arg(long)]
    pub json: bool,
    /// Highest glibc version the binaries may need.
    #[arg(long, default_value = "2.11")]
    pub glibc: String,
    /// ELF executables to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// What to upgrade.
    #[arg(value_enum)]
    pub component: crate::upgrade::Component,
    /// The new upstream version, e.g. `8.0.2`.
    pub version: String,
    /// Accept: write the new pin into vendor/sources.toml and a new line's
    /// series folder into patches/.
    #[arg(long)]
    pub write: bool,
    /// Debian/Ubuntu suite whose source archive holds this version (repeat for
    /// several) [default: the previous pin's suites].
    #[arg(long = "suite", value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Release date (YYYY-MM-DD), for a tree that does not state it.
    #[arg(long, value_name = "DATE")]
    pub released: Option<String>,
    /// A folder holding source archives by file name (also $PORTABLE_REDIS_MIRROR).
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Do not use the network origins (upstream addresses, apt).
    #[arg(long)]
    pub offline: bool,
}

impl SourceArgs {
    pub fn vendor_options(&self) -> crate::vendor::VendorOptions {
        crate::vendor::VendorOptions {
            mirror: self.mirror.clone(),
            offline: self.offline,
        }
    }
}
