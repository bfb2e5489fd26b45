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

pub const SCHEMA: &str = "portable-redis/test-upstream";
/// Parallel test clients of `./runtest` unless told otherwise.
pub const DEFAULT_CLIENTS: usize = 4;
pub const EXCEPTIONS_FILE: &str = "vendor/test-upstream.toml";

/// A part of Redis's test suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// `./runtest`: every unit, type and integration test file.
    Unit,
    /// A fixed sample of `./runtest`'s files (what CI runs).
    Sample,
    /// `./runtest --tls` over the TLS, replication and auth files.
    Tls,
    /// `./runtest-moduleapi`: the module API against tests/modules.
    Moduleapi,
    /// `./runtest --single unit/cluster/…`: the cluster unit tests.
    ClusterUnit,
    /// `./runtest-cluster`: the legacy cluster suite.
    Cluster,
}

/// The files of [`Suite::Sample`]: one per data type, and those that our
/// patches and the security queues touch (dump and corrupt payloads,
/// scripting, ACLs, HyperLogLog, introspection), persistence and the
/// client programs. Replication and auth run in [`Suite::Tls`].
pub const SAMPLE: &[&str] = &[
    "unit/type/string",
    "unit/type/hash",
    "unit/type/list",
    "unit/type/set",
    "unit/type/zset",
    "unit/type/stream",
    "unit/type/incr",
    "unit/expire",
    "unit/keyspace",
    "unit/dump",
    "unit/scripting",
    "unit/functions",
    "unit/acl",
    "unit/acl-v2",
    "unit/bitops",
    "unit/hyperloglog",
    "unit/info",
    "unit/introspection",
    "integration/aof",
    "integration/rdb",
    "integration/redis-cli",
    "integration/redis-benchmark",
    "integration/corrupt-dump",
];

/// Every suite: what `--suite` defaults to and `dist --check-upstream` runs.
/// The unit suite leaves the cluster unit files to [`Suite::ClusterUnit`],
/// which runs every one of them (7.0's `./runtest` lists its files by name
/// and misses those a patch adds).
pub const ALL: &[Suite] = &[
    Suite::Unit,
    Suite::ClusterUnit,
    Suite::Moduleapi,
    Suite::Tls,
    Suite::Cluster,
];

/// The files of [`Suite::Tls`] (TLS itself, replication and auth over TLS).
pub const TLS: &[&str] = &["unit/tls", "integration/replication", "unit/auth"];

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Unit => "unit",
            Suite::Sample => "sample",
            Suite::Tls => "tls",
            Suite::Moduleapi => "moduleapi",
            Suite::ClusterUnit => "cluster-unit",
            Suite::Cluster => "cluster",
        }
    }

    /// The program and its arguments, run in the suite's tree.
    /// `skip` names files another selected suite runs (`--skipunit`).
    fn command(
        self,
        tree: &Path,
        baseport: u16,
        clients: usize,
        skip: &[String],
    ) -> Result<Vec<String>> {
        let mut argv: Vec<String> = match self {
            Suite::Cluster => vec!["./runtest-cluster".into()],
            Suite::Moduleapi => vec!["./runtest-moduleapi".into()],
            _ => vec!["./runtest".into()],
        };
        let singles: Vec<String> = match self {
            Suite::Sample => SAMPLE.iter().map(|s| s.to_string()).collect(),
            Suite::Tls => TLS.iter().map(|s| s.to_string()).collect(),
            Suite::ClusterUnit => cluster_unit_files(tree)?,
            _ => Vec::new(),
        };
        for s in singles {
            argv.push("--single".into());
            argv.push(s);
        }
        if self == Suite::Unit {
            for s in skip {
                argv.push("--skipunit".into());
                argv.push(s.clone());
            }
        }
        if self == Suite::Tls {
            argv.push("--tls".into());
        }
        if self != Suite::Cluster {
            argv.extend([
                "--baseport".into(),
                baseport.to_string(),
                "--portcount".into(),
                "2000".into(),
                "--clients".into(),
                clients.to_string(),
                // Latency limits do not hold on a shared, loaded machine.
                "--no-latency".into(),
                "--dump-logs".into(),
            ]);
        }
        Ok(argv)
    }
}

/// `unit/cluster/…` for every file of the tree's `tests/unit/cluster/`.
fn cluster_unit_files(tree: &Path) -> Result<Vec<String>> {
    let dir = tree.join("tests/unit/cluster");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".tcl").map(|s| format!("unit/cluster/{s}"))
        })
        .collect();
    files.sort();
    Ok(files)
}

// ---------------------------------------------------------------------------
// Expected failures

/// Tests that cannot pass in this environment, each with the reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// Redis lines it applies to (`7.0`, `8.0`).
    pub lines: Vec<String>,
    /// The test's name as the suite prints it.
    pub test: String,
    /// Its file (`unit/memefficiency`).
    pub file: String,
    pub reason: String,
}

impl Exceptions {
    pub fn load(root: &Path) -> Result<Exceptions> {
        let path = root.join(EXCEPTIONS_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid exceptions file", path.display()))
    }

    fn find(&self, line: &str, file: &str, test: &str) -> Option<&Exception> {
        self.exceptions
            .iter()
            .find(|e| e.lines.iter().any(|l| l == line) && e.file == file && e.test == test)
    }
}

// ---------------------------------------------------------------------------
// Results

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub file: String,
    pub test: String,
    /// The assertion text (or error) the suite printed.
    pub text: String,
    /// The documented reason, when it is an expected failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileResult {
    pub file: String,
    /// `ok`, `failed`, or `not run` (the suite stopped before it).
    pub status: String,
    pub failed: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SuiteReport {
    pub suite: Suite,
    pub command: Vec<String>,
    pub passed: usize,
    pub skipped: usize,
    pub files: Vec<FileResult>,
    pub failures: Vec<Failure>,
    /// How many files the suite meant to run (`[N/M done]`'s M).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_total: Option<usize>,
    /// What stopped the suite early (`[exception]`, a timeout), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    pub exit_code: Option<i32>,
    pub seconds: u64,
    pub log: String,
}

impl SuiteReport {
    pub fn unexpected(&self) -> usize {
        self.failures
            .iter()
            .filter(|f| f.expected.is_none())
            .count()
    }

    pub fn passed_all(&self) -> bool {
        self.unexpected() == 0 && self.aborted.is_none()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub line: String,
    pub redis: String,
    pub release: String,
    pub suites: Vec<SuiteReport>,
    pub passed: bool,
}

/// Strip ANSI colour sequences.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Read `./runtest`'s output: `[ok]: name (N ms)`, `[err]: name in
/// tests/unit/x.tcl` followed by the assertion text, `[skip]: name`,
/// `[N/M done]: unit/x (S seconds)`, `[exception]: …`, `[TIMEOUT]: …`.
pub fn parse_runtest(output: &str, suite: Suite) -> SuiteReport {
    let mut r = empty_report(suite);
    let mut files: BTreeMap<String, FileResult> = BTreeMap::new();
    let lines: Vec<String> = output.lines().map(plain).collect();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim_end();
        if let Some(rest) = l.strip_prefix("[ok]: ") {
            let _ = rest;
            r.passed += 1;
        } else if l.starts_with("[skip]: ") || l.starts_with("[ignore]: ") {
            r.skipped += 1;
        } else if let Some(rest) = l.strip_prefix("[err]: ") {
            let (test, file) = match rest.rsplit_once(" in tests/") {
                Some((t, f)) => (t.to_string(), f.trim_end_matches(".tcl").to_string()),
                None => (rest.to_string(), String::new()),
            };
            let mut text = Vec::new();
            while i + 1 < lines.len() && !lines[i + 1].starts_with('[') && !lines[i + 1].is_empty()
            {
                i += 1;
                text.push(lines[i].trim_end().to_string());
            }
            r.failures.push(Failure {
                file,
                test,
                text: text.join("\n"),
                expected: None,
            });
        } else if let Some(rest) = l
            .strip_prefix("[exception]: ")
            .or_else(|| l.strip_prefix("[TIMEOUT]: "))
        {
            r.aborted = Some(rest.to_string());
        } else if l.starts_with('[') && l.contains(" done]: ") {
            // `[12/95 done]: unit/type/list (21 seconds)`
            if let Some((count, rest)) = l.split_once(" done]: ") {
                r.files_total = count
                    .split_once('/')
                    .and_then(|(_, m)| m.parse().ok())
                    .or(r.files_total);
                let (file, secs) = match rest.rsplit_once(" (") {
                    Some((f, s)) => (
                        f.to_string(),
                        s.split_whitespace().next().and_then(|n| n.parse().ok()),
                    ),
                    None => (rest.to_string(), None),
                };
                files.insert(
                    file.clone(),
                    FileResult {
                        file,
                        status: "ok".into(),
                        failed: 0,
                        seconds: secs,
                    },
                );
            }
        }
        i += 1;
    }
    for f in &r.failures {
        let e = files.entry(f.file.clone()).or_insert_with(|| FileResult {
            file: f.file.clone(),
            status: "not run".into(),
            failed: 0,
            seconds: None,
        });
        e.failed += 1;
        e.status = "failed".into();
    }
    r.files = files.into_values().collect();
    r
}

/// Read `./runtest-cluster`'s output: `Testing unit: 00-base.tcl`, then
/// `HH:MM:SS> description: OK` or `…: FAILED: message`.
pub fn parse_cluster(output: &str) -> SuiteReport {
    let mut r = empty_report(Suite::Cluster);
    let mut current = String::new();
    let mut files: Vec<FileResult> = Vec::new();
    for raw in output.lines() {
        let l = plain(raw);
        let l = l.trim_end();
        if let Some(f) = l.strip_prefix("Testing unit: ") {
            current = f.trim_end_matches(".tcl").to_string();
            files.push(FileResult {
                file: current.clone(),
                status: "ok".into(),
                failed: 0,
                seconds: None,
            });
        } else if l.ends_with(": OK") && l.contains("> ") {
            r.passed += 1;
        } else if let Some((head, msg)) = l.split_once(": FAILED: ") {
            let test = head.split_once("> ").map_or(head, |(_, t)| t).to_string();
            r.failures.push(Failure {
                file: current.clone(),
                test,
                text: msg.to_string(),
                expected: None,
            });
            if let Some(f) = files.last_mut() {
                f.failed += 1;
                f.status = "failed".into();
            }
        } else if l.starts_with("FAILED: caught an error in the test") {
            r.aborted = Some(l.to_string());
        }
    }
    r.files = files;
    r
}

fn empty_report(suite: Suite) -> SuiteReport {
    SuiteReport {
        suite,
        command: Vec::new(),
        passed: 0,
        skipped: 0,
        files: Vec::new(),
        failures: Vec::new(),
        files_total: None,
        aborted: None,
        exit_code: None,
        seconds: 0,
        log: String::new(),
    }
}

// ---------------------------------------------------------------------------
// Running

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
    let mut report = run(
        project,
        &Options {
            redis,
            suites: ALL.to_vec(),
            clients: DEFAULT_CLIENTS,
            vendor,
            bin: Some(bin),
        },
    )?;
    report.release = release.name.clone();
    Ok(report)
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

/// The per-file lines and the failures of one suite.
struct SuiteLines<'a>(&'a SuiteReport);

impl fmt::Display for SuiteLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        for file in &r.files {
            match file.status.as_str() {
                "failed" => writeln!(f, "  {:<40} FAILED ({} test(s))", file.file, file.failed)?,
                s => writeln!(f, "  {:<40} {s}", file.file)?,
            }
        }
        for x in &r.failures {
            let tag = match &x.expected {
                Some(why) => format!("expected here: {why}"),
                None => "FAILED".to_string(),
            };
            writeln!(f, "  [{tag}] {} ({})", x.test, x.file)?;
            for l in x.text.lines().take(6) {
                writeln!(f, "      {l}")?;
            }
        }
        if let Some(a) = &r.aborted {
            let done = r.files.iter().filter(|f| f.status != "not run").count();
            match r.files_total {
                Some(total) => writeln!(f, "  ABORTED after {done} of {total} files: {a}")?,
                None => writeln!(f, "  ABORTED: {a}")?,
            }
        }
        writeln!(
            f,
            "  {}: {} ok, {} failed ({} expected), {} skipped in {} s; log {}",
            r.suite.name(),
            r.passed,
            r.failures.len(),
            r.failures.len() - r.unexpected(),
            r.skipped,
            r.seconds,
            r.log
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Redis {} ({}): Redis's own test suite",
            self.redis, self.release
        )?;
        for s in &self.suites {
            writeln!(
                f,
                "  {:<12} {:>5} ok {:>3} failed ({} expected) {:>4} skipped{}",
                s.suite.name(),
                s.passed,
                s.failures.len(),
                s.failures.len() - s.unexpected(),
                s.skipped,
                if s.aborted.is_some() { "  ABORTED" } else { "" }
            )?;
        }
        writeln!(f, "{}", if self.passed { "passed" } else { "FAILED" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNTEST: &str = "\u{1b}[1;37mTesting unit/type/list\u{1b}[0m\n\
[ok]: LPOS basic usage (2 ms)\n\
[ok]: LPOS RANK (1 ms)\n\
[skip]: large memory flag\n\
[err]: Active defrag eval scripts in tests/unit/memefficiency.tcl\n\
Expected 1048576 < 1000000 (context: type eval line 5 cmd {assert {$max_latency <= 30}} proc ::test)\n\
[ok]: Active defrag big keys (7 ms)\n\
[1/3 done]: unit/type/list (12 seconds)\n\
[2/3 done]: unit/memefficiency (70 seconds)\n\
[3/3 done]: unit/auth (1 seconds)\n";

    #[test]
    fn reads_runtest_output_per_file() {
        let r = parse_runtest(RUNTEST, Suite::Unit);
        assert_eq!(r.passed, 3);
        assert_eq!(r.skipped, 1);
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!(f.test, "Active defrag eval scripts");
        assert_eq!(f.file, "unit/memefficiency");
        assert!(f.text.contains("max_latency"), "{}", f.text);
        let files: Vec<(&str, &str)> = r
            .files
            .iter()
            .map(|f| (f.file.as_str(), f.status.as_str()))
            .collect();
        assert_eq!(
            files,
            [
                ("unit/auth", "ok"),
                ("unit/memefficiency", "failed"),
                ("unit/type/list", "ok")
            ]
        );
        assert_eq!(r.files[2].seconds, Some(12));
        assert_eq!(r.files_total, Some(3));
        assert!(r.aborted.is_none());
    }

    #[test]
    fn an_exception_stops_the_suite_and_says_how_far_it_got() {
        let out = "[ok]: a (1 ms)\n[1/84 done]: unit/printver (0 seconds)\n\
                   [exception]: Executing test client: ERR CONFIG SET failed\n";
        let r = parse_runtest(out, Suite::Unit);
        assert!(!r.passed_all());
        assert_eq!(r.files_total, Some(84));
        let text = SuiteLines(&r).to_string();
        assert!(
            text.contains("ABORTED after 1 of 84 files: Executing"),
            "{text}"
        );
    }

    #[test]
    fn reads_the_cluster_suite() {
        let out = "Testing unit: 00-base.tcl\n10:01:02> (init) Restart killed instances: OK\n\
10:01:03> Cluster nodes are reachable: OK\nTesting unit: 02-failover.tcl\n\
10:02:00> Wait for failover: FAILED: No failover detected\n(Jumping to next unit after error)\n";
        let r = parse_cluster(out);
        assert_eq!(r.passed, 2);
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].file, "02-failover");
        assert_eq!(r.failures[0].test, "Wait for failover");
        assert_eq!(r.files[1].status, "failed");
    }

    #[test]
    fn exceptions_match_line_file_and_test() {
        let e: Exceptions = toml::from_str(
            r#"
            [[exception]]
            lines = ["7.0"]
            file = "unit/memefficiency"
            test = "Active defrag eval scripts"
            reason = "latency"
            "#,
        )
        .unwrap();
        assert!(e
            .find("7.0", "unit/memefficiency", "Active defrag eval scripts")
            .is_some());
        assert!(e
            .find("8.0", "unit/memefficiency", "Active defrag eval scripts")
            .is_none());
        assert!(e
            .find("7.0", "unit/memefficiency", "Active defrag big keys")
            .is_none());
    }

    #[test]
    fn the_repository_exceptions_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let e = Exceptions::load(root).unwrap();
        for x in &e.exceptions {
            assert!(!x.reason.trim().is_empty(), "{x:?}");
        }
    }

    #[test]
    fn suites_run_on_their_own_ports() {
        let d = tempfile::tempdir().unwrap();
        let a = Suite::Sample.command(d.path(), 21_000, 2, &[]).unwrap();
        assert!(a.windows(2).any(|w| w == ["--baseport", "21000"]));
        assert!(a.windows(2).any(|w| w == ["--single", "unit/type/list"]));
        let t = Suite::Tls.command(d.path(), 23_000, 2, &[]).unwrap();
        assert!(t.contains(&"--tls".to_string()));
    }

    #[test]
    fn the_unit_suite_leaves_the_cluster_files_to_their_suite() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("tests/unit/cluster")).unwrap();
        for f in ["links.tcl", "packet.tcl"] {
            fs::write(d.path().join("tests/unit/cluster").join(f), "").unwrap();
        }
        let files = cluster_unit_files(d.path()).unwrap();
        assert_eq!(files, ["unit/cluster/links", "unit/cluster/packet"]);
        let c = Suite::ClusterUnit
            .command(d.path(), 21_000, 2, &[])
            .unwrap();
        assert!(c
            .windows(2)
            .any(|w| w == ["--single", "unit/cluster/packet"]));
        let u = Suite::Unit.command(d.path(), 21_000, 2, &files).unwrap();
        assert!(u
            .windows(2)
            .any(|w| w == ["--skipunit", "unit/cluster/links"]));
        assert!(!u.contains(&"--single".to_string()));
    }
}
