//! `cargo xtask dist`: the whole pipeline, top to bottom ([`run`]).
//!
//! The build session (lock, sandbox, toolchain, flags, both series) → the
//! audit gate → build (OpenSSL and Redis; vendor and patch run only on a
//! cache miss) → strip → verify → smoke → package (`stages.rs`). A release
//! is written to `dist/` only after verify and smoke passed:
//!
//! * `<name>.tar.gz`: stripped binaries, licences, BUILDINFO.json, the SBOM
//!   and the verify report (deterministic: see `tarball.rs`);
//! * `<name>-debug.tar.gz`: the unstripped binaries as `.build-id/xx/yyyy.debug`;
//! * `<name>.buildinfo.json`, `<name>.cdx.json`, `<name>.intoto.json`: the
//!   same BUILDINFO (plus the archives' hashes), SBOM and the provenance,
//!   readable without unpacking (`records.rs`, `publish.rs`);
//! * `SHA256SUMS` over every release file in the folder, and its signature
//!   with `--sign`.

mod publish;
mod record;
mod records;
mod stages;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::Result;

pub use publish::{release_files, write_sha256sums};
pub use record::{RunRecord, StageTime, RUN_SCHEMA};
pub use records::{BuildInfo, OutputInfo, BUILDINFO_SCHEMA};
use stages::Line;

use crate::{
    archive,
    build::{BuiltOpenssl, BuiltRedis},
    emulator,
    pins::{SourcePin, Target},
    project::Project,
    sandbox::SandboxKind,
    session::{BuildSession, SessionOptions},
    signature, smoke,
    vendor::VendorOptions,
    verify,
};

#[derive(Debug, Clone)]
pub struct DistOptions {
    /// Redis line or version to build (`7.0`, `8.0.2`); the first pin if unset.
    pub redis: Option<String>,
    /// The target (`[[target]]` in vendor/sources.toml); the first if unset.
    pub target: Option<String>,
    pub vendor: VendorOptions,
    pub sandbox: SandboxKind,
    pub zig: Option<PathBuf>,
    /// Where releases are written (default `dist/`).
    pub out: PathBuf,
    pub jobs: usize,
    /// Open high or critical CVEs to package anyway (`--allow-cve`).
    pub allow_cve: Vec<String>,
    /// Sign SHA256SUMS with this OpenSSH key (`--sign`).
    pub sign: Option<PathBuf>,
}

impl DistOptions {
    /// The defaults of `cargo xtask dist`: sandboxed, the pinned zig, into
    /// `dist/`, a job per CPU, no CVE allowed, unsigned.
    pub fn new(project: &Project, redis: Option<String>, vendor: VendorOptions) -> DistOptions {
        DistOptions {
            redis,
            target: None,
            vendor,
            sandbox: SandboxKind::Bwrap,
            zig: None,
            out: project.root.join("dist"),
            jobs: crate::run::cpus(),
            allow_cve: Vec::new(),
            sign: None,
        }
    }

    /// The build session these options open.
    pub fn session(&self) -> SessionOptions {
        SessionOptions {
            redis: self.redis.clone(),
            target: self.target.clone(),
            sandbox: self.sandbox,
            zig: self.zig.clone(),
            jobs: self.jobs,
            vendor: self.vendor.clone(),
        }
    }
}

/// A packaged, verified release.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub tarball: PathBuf,
    pub debug_tarball: PathBuf,
    pub sha256: String,
    pub verify: verify::VerifyReport,
    pub smoke: smoke::SmokeReport,
    pub built: BuiltRedis,
    pub openssl: BuiltOpenssl,
    /// The files written into the release folder, with their hashes.
    pub outputs: Vec<OutputInfo>,
    /// The run record (`<state>/runs/<name>.json`).
    pub record: PathBuf,
}

/// How the line `dist` ends with starts: `dist: done in 51.3s (build 45.7s,
/// strip and verify 0.2s, …)`, for people (machines read the run record).
const DONE_LINE: &str = "dist: done in ";

/// Where a `dist` spent its time, stage by stage.
struct Clock {
    last: std::time::Instant,
    parts: Vec<(&'static str, std::time::Duration)>,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            last: std::time::Instant::now(),
            parts: Vec::new(),
        }
    }

    /// Record the time since the last mark as `stage`'s.
    fn mark(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.parts.push((stage, now - self.last));
        self.last = now;
    }

    /// The line `dist` ends with (see [`DONE_LINE`]).
    fn summary(&self) -> String {
        let total: f64 = self.parts.iter().map(|(_, d)| d.as_secs_f64()).sum();
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(s, d)| format!("{s} {:.1}s", d.as_secs_f64()))
            .collect();
        format!("{DONE_LINE}{total:.1}s ({})", parts.join(", "))
    }

    fn stages(&self) -> Vec<StageTime> {
        self.parts
            .iter()
            .map(|(s, d)| StageTime {
                name: s.to_string(),
                seconds: d.as_secs_f64(),
            })
            .collect()
    }
}

/// Release name, e.g. `portable-redis-7.0.15-x86_64-linux-glibc2.11`.
pub fn release_name(redis: &SourcePin, target: &Target) -> String {
    format!("portable-redis-{}-{}", redis.version, target.name)
}

/// The pipeline: each stage one call, its output the next one's input. The
/// release folder is written by `package` only; the run record last.
pub fn run(project: &Project, opts: &DistOptions) -> Result<Release> {
    if let Some(key) = &opts.sign {
        signature::check_key(key)?;
    }
    let pins = project.pins()?;
    let redis = pins.redis(opts.redis.as_deref())?;
    eprintln!(
        "dist: Redis {} with OpenSSL {}",
        redis.version, pins.openssl.version
    );
    let target = pins.target(opts.target.as_deref())?;
    // How the smoke test will start the programs, settled before building.
    let runner = emulator::runner(project, target, opts.vendor.offline)?;
    RunRecord::forget(&project.state, &release_name(redis, target))?;
    let mut clock = Clock::start();
    let session = BuildSession::open(project, &opts.session())?;
    let audit = stages::audit_gate(&session, opts)?;
    let line = Line::new(&session, &audit);
    let built = stages::build(&session, &audit)?;
    clock.mark("build");
    let stripped = stages::strip(&line, built)?;
    let verified = stages::verify(&line, stripped)?;
    clock.mark("strip and verify");
    let smoked = stages::smoke(&runner, verified)?;
    clock.mark("smoke");
    let release = stages::package(&line, smoked, opts)?;
    clock.mark("package");
    eprintln!("{}", clock.summary());
    let (steps, outputs) = (session.steps.steps(), release.outputs.clone());
    let record = RunRecord::new(&release.name, clock.stages(), steps, outputs).write(project)?;
    Ok(Release { record, ..release })
}

/// A release with the defaults (sandboxed, into `dist/`),
/// unpacked into `<state>/scratch/<purpose>`: the packaged programs, for a
/// command that runs them (`test-upstream`, `host check`).
pub fn packaged(
    project: &Project,
    redis: Option<&str>,
    vendor: &VendorOptions,
    purpose: &str,
) -> Result<(Release, PathBuf)> {
    let release = run(
        project,
        &DistOptions::new(project, redis.map(String::from), vendor.clone()),
    )?;
    let bin = unpack(project, &release, purpose)?;
    Ok((release, bin))
}

/// The release's `bin/`, unpacked from its tarball into
/// `<state>/scratch/<purpose>`.
pub fn unpack(project: &Project, release: &Release, purpose: &str) -> Result<PathBuf> {
    let dest = project.scratch().join(purpose);
    let staging = crate::fsutil::Staging::beside(&dest)?;
    archive::unpack(&release.tarball, staging.path())?;
    staging.commit(&dest)?;
    Ok(dest.join(&release.name).join("bin"))
}
