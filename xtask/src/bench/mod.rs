//! `cargo xtask bench`: is the tool fast, and are its binaries as fast as the
//! distribution's?
//!
//! Parts (all by default, or some with `--only`):
//! * `build`: a cold build step by the xtask against the same compile by a
//!   plain shell script (ratio ≤ 1.0);
//! * `noop`: `cargo xtask dist` with nothing changed (≤ 2 s);
//! * `incremental`: `dist` after one Redis patch changed (OpenSSL cached,
//!   about the time of the Redis compile alone);
//! * `binaries`: the packaged redis-server against Debian's, driven by the
//!   packaged redis-benchmark (throughput ratio ≥ 1.0 in every row);
//! * `static`: the static (musl) release's redis-server against the default
//!   release's: the price of static, in CPU per request (no target);
//! * `instructions`: instructions per request under callgrind, the packaged
//!   redis-server against Debian's (deterministic: target ≤ 0.85 on the TCP
//!   mix).
//!
//! The machine is shared, so every comparison interleaves A and B and reports
//! medians and spread. The report goes to `target/bench/report.json` and, as
//! Markdown tables, to standard output.

pub mod binaries;
pub mod debian;
pub mod instructions;
pub mod pipeline;
pub mod report;
pub mod stats;

use std::{
    fs,
    path::PathBuf,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{archive, dist, emulator::Runner, fsutil, project::Project};

use self::{
    binaries::BinaryOptions,
    pipeline::PipelineOptions,
    report::{Machine, Report},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// The xtask's own first compile, as on a fresh clone.
    Compile,
    /// Cold build step: xtask against a plain script.
    Build,
    /// `dist` with nothing changed.
    Noop,
    /// `dist` after one Redis patch changed.
    Incremental,
    /// The packaged redis-server against Debian's.
    Binaries,
    /// The static (musl) release's redis-server against the default release's.
    Static,
    /// Instructions per request (callgrind), the packaged server against Debian's.
    Instructions,
}

pub const ALL_PARTS: [Part; 7] = [
    Part::Compile,
    Part::Build,
    Part::Noop,
    Part::Incremental,
    Part::Binaries,
    Part::Static,
    Part::Instructions,
];

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub parts: Vec<Part>,
    pub pipeline: PipelineOptions,
    pub binaries: BinaryOptions,
    /// Where `report.json` and the work folders go (default `target/bench`).
    pub out: PathBuf,
}

/// A redis-server the bench runs: its label in the report, its binary, and
/// how it starts (directly, or through the loader of Debian's root).
pub struct Side {
    pub label: &'static str,
    pub binary: PathBuf,
    pub runner: Runner,
}

impl Side {
    /// A server of this machine that starts directly.
    pub fn native(label: &'static str, binary: PathBuf) -> Side {
        Side {
            label,
            binary,
            runner: Runner::native(),
        }
    }

    /// Debian's server, labelled `debian`.
    pub fn debian(server: &debian::DebianServer) -> Side {
        Side {
            label: "debian",
            binary: server.binary.clone(),
            runner: server.runner.clone(),
        }
    }
}

/// Requests per workload under callgrind (about 50 times slower than
/// the server alone): enough that start and shutdown are a small part.
const INSTRUCTION_REQUESTS: u64 = 5_000;

pub fn run(project: &Project, opts: &BenchOptions) -> Result<Report> {
    let start = Instant::now();
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let load_before = load_average();
    let work = opts.out.join("work");
    if work.exists() {
        fsutil::make_writable_and_remove(&work)?;
    }
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let has = |p: Part| opts.parts.contains(&p);
    let pin = project
        .pins()?
        .redis(opts.pipeline.redis.as_deref())?
        .clone();

    // An ordinary dist first (not timed) for every part but the compile: the
    // release the binaries part runs, the cache the no-op part finds, the
    // warm zig cache the cold builds copy.
    let release = if opts.parts.iter().any(|p| *p != Part::Compile) {
        eprintln!("bench: warm-up dist (not timed)");
        Some(dist::run(
            project,
            &dist::DistOptions {
                sandbox: opts.pipeline.sandbox,
                jobs: opts.pipeline.jobs,
                ..dist::DistOptions::new(project, opts.pipeline.redis.clone(), Default::default())
            },
        )?)
    } else {
        None
    };
    let warm = || release.as_ref().context("the warm-up dist did not run");

    let mut sections = Vec::new();
    if has(Part::Compile) {
        eprintln!("bench: the xtask's first compile, as on a fresh clone");
        sections.push(pipeline::fresh_compile(project, &work, &opts.pipeline)?);
    }
    if has(Part::Build) {
        eprintln!("bench: cold build step, xtask against a plain script");
        sections.push(pipeline::cold(project, &work, &opts.pipeline)?);
    }
    if has(Part::Noop) {
        eprintln!("bench: no-op dist");
        sections.push(pipeline::noop(project, &opts.pipeline)?);
    }
    if has(Part::Incremental) {
        eprintln!("bench: dist after changing one Redis patch");
        sections.push(pipeline::incremental(
            project,
            &work,
            &warm()?.openssl.dir,
            &opts.pipeline,
        )?);
    }
    if has(Part::Binaries) || has(Part::Static) || has(Part::Instructions) {
        let unpacked = work.join("release");
        fs::create_dir_all(&unpacked)?;
        let release = warm()?;
        archive::unpack(&release.tarball, &unpacked)?;
        let bin = unpacked.join(&release.name).join("bin");
        let debian = if has(Part::Binaries) || has(Part::Instructions) {
            eprintln!("bench: Debian's redis-server {}", pin.version);
            Some(debian::server(project, &pin, &opts.out.join("debian"))?)
        } else {
            None
        };
        let debian = || debian.as_ref().context("Debian's server was not made");
        if has(Part::Binaries) {
            eprintln!("bench: the packaged redis-server against Debian's");
            sections.extend(binaries::run(
                &bin,
                debian()?,
                &work.join("binaries"),
                &opts.binaries,
            )?);
        }
        if has(Part::Instructions) {
            eprintln!(
                "bench: instructions per request under callgrind, the packaged redis-server \
                 against Debian's"
            );
            sections.push(instructions::against_debian(
                &bin,
                debian()?,
                &work.join("instructions"),
                &instructions::InstructionOptions {
                    requests: INSTRUCTION_REQUESTS,
                    pipeline: opts.binaries.pipeline,
                },
            )?);
        }
        if has(Part::Static) {
            let pins = project.pins()?;
            let mut target = None;
            for t in &pins.targets {
                if crate::verify::target_policy(project, t)?.is_static() {
                    target = Some(t);
                    break;
                }
            }
            let target = target.context(
                "no [[target]] with a static policy in vendor/sources.toml for the static part",
            )?;
            eprintln!(
                "bench: the {} release's redis-server against the default's",
                target.name
            );
            let musl = dist::run(
                project,
                &dist::DistOptions {
                    target: Some(target.name.clone()),
                    sandbox: opts.pipeline.sandbox,
                    jobs: opts.pipeline.jobs,
                    // Not the user's dist/: its SHA256SUMS stays as it is.
                    out: work.join("static-dist"),
                    ..dist::DistOptions::new(
                        project,
                        opts.pipeline.redis.clone(),
                        Default::default(),
                    )
                },
            )?;
            archive::unpack(&musl.tarball, &unpacked)?;
            sections.extend(binaries::run_static(
                &unpacked.join(&musl.name).join("bin"),
                &bin,
                &work.join("static"),
                &opts.binaries,
            )?);
        }
    }
    fsutil::make_writable_and_remove(&work)?;

    let report = Report::new(
        started_unix,
        start.elapsed().as_secs_f64(),
        machine(load_before),
        sections,
    );
    let path = opts.out.join("report.json");
    let mut json = serde_json::to_string_pretty(&report)?;
    json.push('\n');
    fsutil::write_atomic(&path, json.as_bytes())?;
    eprintln!("bench: report written to {}", path.display());
    Ok(report)
}

fn load_average() -> [f64; 3] {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| report::parse_loadavg(&t))
        .unwrap_or_default()
}

fn machine(load_before: [f64; 3]) -> Machine {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let (cpu, cores) = report::parse_cpuinfo(&read("/proc/cpuinfo"));
    let os = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown OS".into());
    Machine {
        cpu,
        cores,
        memory_gib: report::parse_meminfo_gib(&read("/proc/meminfo")).unwrap_or_default(),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        os,
        load_before,
        load_after: load_average(),
    }
}
