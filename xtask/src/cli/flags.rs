//! The command line's words: every command, its arguments and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{sandbox::SandboxKind, torture::TortureStep};

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
    Vendor(VendorArgs),
    /// Apply a Redis line's patch series to a fresh copy of its pinned tree.
    Patch(PatchArgs),
    /// Check ELF binaries against the glibc baseline (exit 0 pass, 1 violations, 2 unusable input).
    Verify(VerifyArgs),
    /// Re-check a release folder: SHA256SUMS, its signature (--key), the
    /// provenance against this checkout's pins, the verify report (exit 0
    /// pass, 1 a check failed, 2 unusable input).
    VerifyRelease(VerifyReleaseArgs),
    /// Build twice from clean checkouts (different paths, hostnames, umask, TZ,
    /// time; nothing shared) and compare the release archives bit for bit.
    Repro(ReproArgs),
    /// Print the tree hash of a folder (for writing pins).
    Hash(HashArgs),
    /// Pin a new Redis or OpenSSL version and rehearse its patch series
    /// (changes nothing until --write).
    Upgrade(UpgradeArgs),
    /// Prove a patch against hostile inputs with real redis-server runs.
    #[command(subcommand)]
    Torture(TortureCommand),
    /// List every known CVE of each release line and how the pins address it
    /// (vendor/advisories.toml); exit 1 on an open high or critical one.
    Audit(AuditArgs),
    /// Run Redis's own test suite against the packaged binaries; exit 1 on a
    /// failure vendor/test-upstream.toml does not list.
    TestUpstream(TestUpstreamArgs),
    /// Old target hosts: build the pinned glibc 2.11 into one, and run the
    /// release's programs through its loader.
    #[command(subcommand)]
    Host(HostCommand),
    /// Measure the tool (cold, no-op and incremental builds) and its binaries
    /// (against Debian's redis-server); writes target/bench/report.json.
    Bench(BenchArgs),
    /// Train a line's profile for profile-guided optimisation: build it
    /// instrumented, serve a redis-benchmark load over TCP and TLS, and write
    /// profiles/<redis>/<target>.profdata, which later builds read.
    Pgo(PgoArgs),
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Build the pinned glibc (vendor/sources.toml [glibc]) from source with
    /// the host's gcc, in the sandbox, once: prints the host folder
    /// (lib64/ld-linux-x86-64.so.2, libc.so.6, …).
    Build(HostBuildArgs),
    /// Run every packaged program through an old host's loader: servers over
    /// TCP and TLS, Lua, BGSAVE, AOF rewrite, a replica, a cluster,
    /// redis-benchmark, redis-sentinel, the checkers. Exit 1 on any failure
    /// or any message of the loader.
    Check(HostCheckArgs),
}

#[derive(Debug, Args)]
pub struct HostBuildArgs {
    /// A folder holding source archives by file name (also $PORTABLE_REDIS_MIRROR).
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Do not use the network origins (upstream addresses, apt).
    #[arg(long)]
    pub offline: bool,
    /// Build isolation; `none` builds on the host as it is.
    #[arg(long, value_enum, default_value_t = SandboxKind::Bwrap)]
    pub sandbox: SandboxKind,
    /// Parallel compile jobs [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
}

#[derive(Debug, Args)]
pub struct HostCheckArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// A copy of an old host's library folders (its lib64/, usr/lib64/ …)
    /// [default: the glibc 2.11 host, built if missing].
    #[arg(long, value_name = "DIR")]
    pub host: Option<PathBuf>,
    /// A release's bin/ folder to run instead of running `dist`.
    #[arg(long, value_name = "DIR")]
    pub bin: Option<PathBuf>,
    /// Where the servers run and write [default: <state>/host-check/<line>].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Print the report as JSON (`schema: "portable-redis/host-check"`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TortureCommand {
    /// The cluster config loader: truncated and corrupted nodes.conf files
    /// (upstream vs patched vs ASan), rejoin after a torn file, and kill -9
    /// during rewrites.
    NodesConf(NodesConfArgs),
}

#[derive(Debug, Args)]
pub struct NodesConfArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Number of seeded random corruptions.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub random: usize,
    /// Seed of the random corruptions and of the kill timing.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Cut at every K-th byte before the last line (every byte inside it).
    #[arg(long, default_value_t = 1, value_name = "K")]
    pub stride: usize,
    /// Parallel redis-server runs [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Skip the AddressSanitizer build and row.
    #[arg(long)]
    pub no_asan: bool,
    /// kill -9 rounds of the crash-safety step.
    #[arg(long, default_value_t = 60, value_name = "N")]
    pub kills: usize,
    /// Run only these steps (repeatable) [default: all].
    #[arg(long, value_enum)]
    pub only: Vec<TortureStep>,
    /// Patched binaries (a release's bin/) instead of running `dist`.
    #[arg(long, value_name = "DIR")]
    pub bin: Option<PathBuf>,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Run only these parts (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<crate::bench::Part>,
    /// Redis line or version to build and measure.
    #[arg(long, value_name = "LINE")]
    pub redis: Option<String>,
    /// Rounds of the binaries benchmark (each measures both servers).
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
    /// Rounds of the fresh compile, the cold and the incremental builds (a
    /// cold round is two full builds).
    #[arg(long, default_value_t = 1)]
    pub build_rounds: usize,
    /// Runs of the no-op dist.
    #[arg(long, default_value_t = 5)]
    pub noop_rounds: usize,
    /// Requests per test without pipelining (ten times as many with it).
    #[arg(long, default_value_t = 50_000)]
    pub requests: u64,
    /// Pipeline depth of the pipelined runs.
    #[arg(long, default_value_t = 16)]
    pub pipeline: u32,
    /// Parallel client connections of redis-benchmark.
    #[arg(long, default_value_t = 50)]
    pub clients: u32,
}

#[derive(Debug, Args)]
pub struct PgoArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The target to train for [default: the first; only a glibc target of
    /// this machine's architecture, where the instrumented server runs].
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Requests per redis-benchmark test without pipelining (ten times as
    /// many with it).
    #[arg(long, default_value_t = 20_000)]
    pub requests: u64,
    /// Parallel compile jobs [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
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
pub struct VendorArgs {
    #[command(flatten)]
    pub source: SourceArgs,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct DistArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// What to build for: a `[[target]]` of vendor/sources.toml, whose name
    /// ends the release's name, or `all` (each in turn, into one folder)
    /// [default: the first, x86_64-linux-glibc2.11].
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
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
    /// Package even though this open high or critical CVE is not fixed
    /// (repeatable; recorded in BUILDINFO.json and the SBOM).
    #[arg(long = "allow-cve", value_name = "CVE")]
    pub allow_cve: Vec<String>,
    /// Sign SHA256SUMS with this OpenSSH private key (or a public key whose
    /// private half is in ssh-agent) into SHA256SUMS.sig (ssh-keygen -Y sign).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
    /// Then run all of Redis's own test suite on the packaged binaries
    /// (`cargo xtask test-upstream`; about an hour on 2 cores) and fail
    /// unless it passes with the documented exceptions only.
    #[arg(long)]
    pub check_upstream: bool,
}

#[derive(Debug, Args)]
pub struct VerifyReleaseArgs {
    /// The release folder (what `dist` wrote: archives, SHA256SUMS, …).
    pub dir: PathBuf,
    /// The publisher's OpenSSH public key (.pub): SHA256SUMS.sig must be
    /// its signature of SHA256SUMS.
    #[arg(long, value_name = "PUB")]
    pub key: Option<PathBuf>,
    /// Print the report as JSON (`portable-redis/verify-release`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TestUpstreamArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Suites to run (comma-separated) [default: all: unit, cluster-unit,
    /// moduleapi, tls, cluster].
    #[arg(long = "suite", value_enum, value_delimiter = ',')]
    pub suites: Vec<crate::test_upstream::Suite>,
    /// Parallel test clients of ./runtest.
    #[arg(long, default_value_t = crate::test_upstream::DEFAULT_CLIENTS)]
    pub clients: usize,
    /// A release's bin/ folder to test instead of running `dist`.
    #[arg(long, value_name = "DIR")]
    pub bin: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Print the audit as JSON (`schema: "portable-redis/audit"`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReproArgs {
    /// Redis line or version to build.
    #[arg(long, value_name = "LINE")]
    pub redis: Option<String>,
    /// Folder for the two build roots [default: <state>/repro].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// A folder holding source archives by file name, for both builds.
    #[arg(long, value_name = "DIR")]
    pub mirror: Option<PathBuf>,
    /// Keep the build roots after an identical result.
    #[arg(long)]
    pub keep: bool,
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
    /// The target policy to check against
    /// [default: policy/x86_64-linux-gnu.2.11.toml].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Highest glibc version the binaries may need [default: the policy's].
    #[arg(long, value_name = "VERSION")]
    pub glibc: Option<String>,
    /// Also check against a copy of a host's libraries (its lib64/, lib/,
    /// usr/lib64/ … folders), as that host's loader would; repeatable.
    #[arg(long, value_name = "DIR")]
    pub against: Vec<PathBuf>,
    /// A linker map (with a cross-reference table) naming the objects behind
    /// each symbol; repeatable, matched to binaries by name. Maps beside the
    /// binaries (`X.map`, `../maps/X.map`) are found without this.
    #[arg(long, value_name = "FILE")]
    pub map: Vec<PathBuf>,
    /// The OpenSSL version that must be linked in, or `none`
    /// [default: the pin in vendor/sources.toml].
    #[arg(long, value_name = "VERSION")]
    pub openssl: Option<String>,
    /// zig's glibc ABI list [default: the pinned zig's lib/libc/glibc/abilists,
    /// provisioned if missing].
    #[arg(long, value_name = "FILE")]
    pub abilists: Option<PathBuf>,
    /// ELF executables to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// What to upgrade.
    #[arg(value_enum)]
    pub component: crate::pins_edit::Component,
    /// The new upstream version, e.g. `8.0.2`.
    pub version: String,
    /// Accept: write the new pin into vendor/sources.toml and a new line's
    /// series folder into patches/.
    #[arg(long)]
    pub write: bool,
    /// Refresh the security queue of the pinned VERSION instead: the newest
    /// Debian revision of it in the pin's suites, its new CVE patches,
    /// rehearsed on the series.
    #[arg(long)]
    pub security: bool,
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
