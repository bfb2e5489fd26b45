//! `cargo xtask test-upstream [--redis LINE] [--suite S]...`: Redis's own
//! test suite against the packaged binaries.
//!
//! Each suite runs in its own copy of the pinned tree, patched as released
//! (our series and the security queue), with the release's programs in its
//! `src/` under the names the suite expects, on its own port range (the
//! suite deletes `tests/tmp` when it starts, so two runs never share a tree).
//! `tests/modules` are built with the host's compiler. The output is one line
//! per test file, the failing tests with their assertion text, and
//! `target/test-upstream/<line>/report.json`; a failure that
//! `vendor/test-upstream.toml` does not list makes the command exit 1.

use std::{
    collections::BTreeMap,
    fmt, fs,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    dist, fsutil, patch,
    project::Project,
    security,
    vendor::{self, VendorOptions},
};

mod suites;
pub use suites::*;
mod report;
pub use report::*;
mod parse;
pub use parse::*;

pub const SCHEMA: &str = "portable-redis/test-upstream";
/// Parallel test clients of `./runtest` unless told otherwise.
pub const DEFAULT_CLIENTS: usize = 4;
pub const EXCEPTIONS_FILE: &str = "vendor/test-upstream.toml";

pub struct Options {
    pub redis: Option<String>,
    pub suites: Vec<Suite>,
    /// Test clients of `./runtest` (parallel test files).
    pub clients: usize,
    pub vendor: VendorOptions,
    /// A release's `bin/` to test instead of running `dist`.
    pub bin: Option<PathBuf>,
}

/// `dist --check-upstream`: every suite on the release just packaged.
pub fn check_release(
    project: &Project,
    release: &dist::Release,
    redis: Option<String>,
    vendor: VendorOptions,
) -> Result<Report> {
    let bin = dist::unpack(project, release, "test-upstream-release")?;
    // A static redis-server cannot load modules (no dlopen): the module API
    // suite has nothing to run against it.
    let suites = if release.verify.policy.is_static() {
        eprintln!(
            "test-upstream: {} is static, which loads no module: the moduleapi suite is left out",
            release.name
        );
        ALL.iter()
            .copied()
            .filter(|s| *s != Suite::Moduleapi)
            .collect()
    } else {
        ALL.to_vec()
    };
    let mut report = run(
        project,
        &Options {
            redis,
            suites,
            clients: DEFAULT_CLIENTS,
            vendor,
            bin: Some(bin),
        },
    )?;
    report.release = release.name.clone();
    Ok(report)
}

/// The suites start the programs themselves, so `target`'s must be this
/// machine's own: checked before anything is built.
pub fn check_runs_here(target: &crate::pins::Target) -> Result<()> {
    let arch = target.arch();
    if arch != std::env::consts::ARCH {
        bail!(
            "--check-upstream: {} is for {arch}, and Redis's own suites start its programs \
             directly on this {} machine: run `cargo xtask test-upstream --bin DIR` on an {arch} \
             machine, or drop --check-upstream for this target (dist's smoke test runs it under \
             the target's emulator)",
            target.name,
            std::env::consts::ARCH
        );
    }
    Ok(())
}

/// Whether `tclsh` can load the `tls` package (for `--tls`).
fn tcl_has_tls() -> bool {
    let mut c = Command::new("tclsh");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let Ok(mut child) = c.spawn() else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(b"puts [package require tls]\n");
    }
    child
        .wait_with_output()
        .map(|o| o.status.success() && !o.stdout.is_empty())
        .unwrap_or(false)
}

pub fn run(project: &Project, opts: &Options) -> Result<Report> {
    let pins = project.pins()?;
    let pin = pins.redis(opts.redis.as_deref())?.clone();
    let exceptions = Exceptions::load(&project.root)?;
    if Command::new("tclsh")
        .arg("/dev/null")
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        bail!("Redis's test suite needs tclsh 8.5 or newer: apt-get install tcl");
    }
    if opts.suites.contains(&Suite::Tls) && !tcl_has_tls() {
        bail!("the TLS suite needs Tcl's tls package: apt-get install tcl-tls");
    }
    let (release, bin) = match &opts.bin {
        Some(b) => (
            "(given binaries)".to_string(),
            fs::canonicalize(b).with_context(|| format!("--bin {}", b.display()))?,
        ),
        None => {
            let (release, bin) = dist::packaged(
                project,
                opts.redis.as_deref(),
                &opts.vendor,
                "test-upstream-release",
            )?;
            (release.name, bin)
        }
    };

    // The tree as released, once; each suite gets its own copy.
    let work = project.root.join("target/test-upstream").join(pin.line());
    let tree = {
        let _lock = project.lock()?;
        let series = security::series(project, &pin, &opts.vendor)?;
        let source = vendor::vendor(project, &pin, &opts.vendor)?;
        let tree = work.join("tree");
        if tree.exists() {
            fsutil::make_writable_and_remove(&tree)?;
        }
        patch::apply_series(&source.dir, &series, &tree)?;
        tree
    };
    let mut suites = Vec::new();
    for (n, suite) in opts.suites.iter().enumerate() {
        let dir = work.join(suite.name());
        kill_leftovers(&dir);
        if dir.exists() {
            fsutil::make_writable_and_remove(&dir)?;
        }
        fsutil::copy_tree(&tree, &dir)?;
        install_programs(&bin, &dir.join("src"))?;
        if *suite == Suite::Tls {
            prepare_tls(&dir)?;
        }
        let baseport = 21_000 + 2_000 * n as u16;
        eprintln!(
            "test-upstream: Redis {} {} suite",
            pin.version,
            suite.name()
        );
        let skip = if opts.suites.contains(&Suite::ClusterUnit) {
            cluster_unit_files(&dir)?
        } else {
            Vec::new()
        };
        let mut report = run_suite(*suite, &dir, baseport, opts.clients, &skip)?;
        for f in &mut report.failures {
            f.expected = exceptions
                .find(&pin.line(), &f.file, &f.test)
                .map(|e| e.reason.clone());
        }
        eprint!("{}", SuiteLines(&report));
        suites.push(report);
    }
    let passed = suites.iter().all(SuiteReport::passed_all);
    let report = Report {
        schema: SCHEMA,
        schema_version: 1,
        line: pin.line(),
        redis: pin.version.clone(),
        release,
        suites,
        passed,
    };
    let json = serde_json::to_string_pretty(&report)?;
    fsutil::write_atomic(&work.join("report.json"), format!("{json}\n").as_bytes())?;
    Ok(report)
}

/// The release's programs under the names the suite starts them by.
fn install_programs(bin: &Path, src: &Path) -> Result<()> {
    for p in [
        "redis-server",
        "redis-cli",
        "redis-benchmark",
        "redis-check-aof",
        "redis-check-rdb",
        "redis-sentinel",
    ] {
        let from = bin.join(p);
        if !from.exists() {
            bail!("{} holds no {p}", bin.display());
        }
        let to = src.join(p);
        let _ = fs::remove_file(&to);
        match fs::read_link(&from) {
            Ok(target) => std::os::unix::fs::symlink(target, &to)?,
            Err(_) => {
                fs::copy(&from, &to)
                    .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            }
        }
    }
    Ok(())
}

/// `tests/tls/`: the certificates the TLS suite expects, made now.
fn prepare_tls(tree: &Path) -> Result<()> {
    let out = Command::new("sh")
        .arg("utils/gen-test-certs.sh")
        .current_dir(tree)
        .output()
        .context("running utils/gen-test-certs.sh")?;
    if !out.status.success() {
        bail!(
            "utils/gen-test-certs.sh failed ({}): the TLS suite needs the openssl command (apt-get install openssl)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn run_suite(
    suite: Suite,
    tree: &Path,
    baseport: u16,
    clients: usize,
    skip: &[String],
) -> Result<SuiteReport> {
    let argv = suite.command(tree, baseport, clients, skip)?;
    let log = tree.join("test-upstream.log");
    let started = Instant::now();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(tree)
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("running {} in {}", argv.join(" "), tree.display()))?;
    let mut text = String::new();
    if let Some(out) = child.stdout.take() {
        let mut logf = fs::File::create(&log)?;
        for line in BufReader::new(out).lines() {
            let line = line?;
            use std::io::Write;
            writeln!(logf, "{line}")?;
            let p = plain(&line);
            if p.contains(" done]: ") || p.starts_with("Testing unit: ") {
                eprintln!("  {p}");
            }
            text.push_str(&line);
            text.push('\n');
        }
    }
    let status = child.wait()?;
    let left = kill_leftovers(tree);
    if left > 0 {
        eprintln!(
            "  killed {left} process(es) the suite left running in {}",
            tree.display()
        );
    }
    let mut report = match suite {
        Suite::Cluster => parse_cluster(&text),
        _ => parse_runtest(&text, suite),
    };
    report.command = argv;
    report.exit_code = status.code();
    report.seconds = started.elapsed().as_secs();
    report.log = log.display().to_string();
    if !status.success() && report.failures.is_empty() && report.aborted.is_none() {
        report.aborted = Some(format!(
            "{} exited with {status} without naming a failed test; see {}",
            report.command.join(" "),
            log.display()
        ));
    }
    Ok(report)
}

/// SIGKILL every process working inside `tree`: servers a suite left
/// behind when it stopped early (one stuck in a busy script ignores SIGTERM
/// and would spin for ever). Returns how many there were.
fn kill_leftovers(tree: &Path) -> usize {
    let Ok(procs) = fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for e in procs.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let inside = fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(tree));
        if inside
            && Command::new("kill")
                .args(["-KILL", pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        {
            killed += 1;
        }
    }
    killed
}

#[cfg(test)]
mod tests;
