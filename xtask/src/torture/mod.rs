//! `cargo xtask torture nodes-conf [--redis LINE]`: the proof of the cluster
//! config loader patch (`patches/redis/<line>/0003-cluster-config-loader.patch`,
//! for 7.0 and 8.0).
//!
//! 1. A real 3-master/3-replica cluster from the packaged release gives six
//!    real nodes.conf files (`cluster.rs`).
//! 2. Rejoin (`rejoin.rs`) and crash-safety of writes (`crash_safety.rs`)
//!    run on that live cluster; then it is stopped.
//! 3. The corpus (`corpus.rs`: every truncation, seeded random corruptions)
//!    is run against the line's upstream release, the patched release and a patched
//!    AddressSanitizer build (`builds.rs`, `probe.rs`); the table shows the
//!    rows side by side and the patched rows must hold: no crash, no hang,
//!    every cut inside the last line starts, every refusal names the file and
//!    the line and leaves the file as it was, no new node id for a file that
//!    had content.

pub mod builds;
pub mod cluster;
pub mod corpus;
pub mod crash_safety;
pub mod probe;
pub mod rejoin;

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::{fsutil, project::Project, vendor::VendorOptions};

use corpus::{Case, Family};
use probe::{Outcome, Probe, Target};

/// Counts of one build over one family of inputs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub started: usize,
    pub refused: usize,
    pub crashed: usize,
    pub hung: usize,
}

impl Counts {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Started { .. } => self.started += 1,
            Outcome::Refused { .. } => self.refused += 1,
            Outcome::Crashed { .. } => self.crashed += 1,
            Outcome::Hung => self.hung += 1,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub label: String,
    pub truncations: Counts,
    pub random: Counts,
    /// Cuts inside the last line that started.
    pub last_line_started: usize,
    /// How the crashes happened, with a count each.
    pub crashes: BTreeMap<String, usize>,
    /// The first input of each kind of crash, and of a hang.
    pub examples: BTreeMap<String, String>,
    pub seconds: f64,
    /// Must hold for a patched build (empty for upstream).
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub files: usize,
    pub file_bytes: Vec<usize>,
    pub truncations: usize,
    pub last_line: usize,
    pub random: usize,
    pub seed: u64,
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub table: Option<Table>,
    pub rejoin: Option<rejoin::RejoinReport>,
    pub crash_safety: Option<crash_safety::CrashReport>,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.table
            .as_ref()
            .map_or(0, |t| t.rows.iter().map(|r| r.violations.len()).sum())
    }
}

/// A step of `torture nodes-conf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TortureStep {
    Table,
    Rejoin,
    CrashSafety,
}

pub const ALL_STEPS: [TortureStep; 3] = [
    TortureStep::Table,
    TortureStep::Rejoin,
    TortureStep::CrashSafety,
];

/// What `torture nodes-conf` runs.
#[derive(Debug, Clone)]
pub struct NodesConfOptions {
    pub redis: Option<String>,
    pub vendor: VendorOptions,
    /// Seeded random corruptions.
    pub random: usize,
    /// Seed of the corruptions and of the kill timing.
    pub seed: u64,
    /// Cut at every K-th byte before the last line.
    pub stride: usize,
    /// Parallel redis-server runs.
    pub jobs: usize,
    /// Build and run the AddressSanitizer row.
    pub asan: bool,
    /// kill -9 rounds of the crash-safety step.
    pub kills: usize,
    pub steps: Vec<TortureStep>,
    /// Patched binaries (a release's bin/) instead of running `dist`.
    pub bin: Option<PathBuf>,
    /// Where the report is also written as JSON.
    pub json: Option<PathBuf>,
}

/// The proof, printed as it goes; the report's violations are its verdict.
pub fn nodes_conf(project: &Project, args: &NodesConfOptions) -> Result<Report> {
    let steps = &args.steps;
    let table_wanted = steps.contains(&TortureStep::Table);
    let builds = builds::prepare(
        project,
        &builds::BuildOptions {
            redis: args.redis.clone(),
            vendor: args.vendor.clone(),
            patched_bin: args.bin.clone(),
            asan: table_wanted && args.asan,
            jobs: args.jobs,
        },
    )?;
    let scratch = project.scratch().join("torture");
    if scratch.exists() {
        fsutil::make_writable_and_remove(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;

    let mut report = Report::default();
    eprintln!(
        "torture: starting a 3-master/3-replica cluster from {}",
        builds.bin.display()
    );
    let mut live = cluster::Cluster::start(&builds.bin, &scratch.join("cluster"))?;
    let files = live.files()?;
    for f in &files {
        fs::write(scratch.join(format!("node-{}.conf", f.node)), &f.bytes)?;
    }
    if steps.contains(&TortureStep::Rejoin) {
        eprintln!("torture: rejoin");
        let r = rejoin::run(&mut live, &builds.upstream, &scratch)?;
        print_rejoin(&r);
        report.rejoin = Some(r);
    }
    if steps.contains(&TortureStep::CrashSafety) {
        eprintln!("torture: crash-safety ({} kills)", args.kills);
        let r = crash_safety::run(&mut live, args.kills, args.seed)?;
        print_crash(&r);
        report.crash_safety = Some(r);
    }
    live.stop();

    if table_wanted {
        let mut cases = corpus::truncations(&files, args.stride);
        cases.extend(corpus::random(&files, args.random, args.seed));
        let mut targets = vec![builds.upstream.clone(), builds.patched.clone()];
        targets.extend(builds.asan.clone());
        let mut rows = Vec::new();
        for t in &targets {
            let start = Instant::now();
            let inputs: Vec<&[u8]> = cases.iter().map(|c| c.bytes.as_slice()).collect();
            let dir = scratch.join("runs").join(slug(&t.label));
            let probes = probe::probe_all(t, &inputs, args.jobs, &dir)?;
            let strict = t.label != builds.upstream.label;
            let row = summarize(t, &cases, &probes, strict, &scratch.join("failures"))?;
            eprintln!(
                "  {}: {} runs in {:.1}s",
                t.label,
                cases.len(),
                start.elapsed().as_secs_f64()
            );
            rows.push(Row {
                seconds: start.elapsed().as_secs_f64(),
                ..row
            });
        }
        let table = Table {
            files: files.len(),
            file_bytes: files.iter().map(|f| f.bytes.len()).collect(),
            truncations: cases
                .iter()
                .filter(|c| c.family == Family::Truncation)
                .count(),
            last_line: cases.iter().filter(|c| c.in_last_line).count(),
            random: args.random,
            seed: args.seed,
            rows,
        };
        print_table(&table);
        report.table = Some(table);
    }
    if let Some(path) = &args.json {
        fsutil::write_atomic(
            path,
            format!("{}\n", serde_json::to_string_pretty(&report)?).as_bytes(),
        )?;
    }
    let violations = report.violations();
    if violations > 0 {
        println!(
            "FAILED: {violations} violation(s); inputs kept in {}",
            scratch.join("failures").display()
        );
        return Ok(report);
    }
    if report.table.is_some() {
        println!(
            "PASS: the patched rows show no crash and no hang, start on every cut inside the \
             last line, name the file and line of every refusal and leave the file as it was"
        );
    }
    Ok(report)
}

fn slug(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Count the outcomes; for a patched build, list what breaks the promises.
fn summarize(
    target: &Target,
    cases: &[Case],
    probes: &[Probe],
    strict: bool,
    failures: &Path,
) -> Result<Row> {
    let mut row = Row {
        label: target.label.clone(),
        truncations: Counts::default(),
        random: Counts::default(),
        last_line_started: 0,
        crashes: BTreeMap::new(),
        examples: BTreeMap::new(),
        seconds: 0.0,
        violations: Vec::new(),
    };
    for (c, p) in cases.iter().zip(probes) {
        match c.family {
            Family::Truncation => row.truncations.add(&p.outcome),
            Family::Random => row.random.add(&p.outcome),
        }
        let started = matches!(p.outcome, Outcome::Started { .. });
        if c.in_last_line && started {
            row.last_line_started += 1;
        }
        if let Outcome::Crashed { how } = &p.outcome {
            *row.crashes.entry(how.clone()).or_default() += 1;
        }
        if let Outcome::Crashed { how } = &p.outcome {
            row.examples
                .entry(how.clone())
                .or_insert_with(|| format!("{} ({})", c.name, c.what));
        }
        if p.outcome == Outcome::Hung {
            row.examples
                .entry("hung".into())
                .or_insert_with(|| format!("{} ({})", c.name, c.what));
        }
        if !strict {
            continue;
        }
        let broken = match &p.outcome {
            Outcome::Crashed { how } => Some(format!("crashed ({how})")),
            Outcome::Hung => Some("hung".into()),
            Outcome::Refused { message, code } => {
                if *code != 1 || !names_file_and_line(message) {
                    Some(format!(
                        "refused without naming the file and line (exit {code}): {message}"
                    ))
                } else if !p.untouched {
                    Some("refused but nodes.conf was changed".into())
                } else {
                    c.in_last_line
                        .then(|| format!("a cut inside the last line was refused: {message}"))
                }
            }
            Outcome::Started { minted: true, .. } if !c.bytes.is_empty() => {
                Some("started with a new node id although the file had content".into())
            }
            Outcome::Started { .. }
                if c.torn_tail && !p.healed.iter().any(|w| names_file_and_line(w)) =>
            {
                Some("started over a torn last line without a warning naming it".into())
            }
            Outcome::Started { .. } => None,
        };
        if let Some(why) = broken {
            let dir = failures.join(slug(&target.label));
            fs::create_dir_all(&dir)?;
            let keep = dir.join(format!("{}.conf", c.name));
            fs::write(&keep, &c.bytes).with_context(|| format!("writing {}", keep.display()))?;
            row.violations.push(format!(
                "{} ({}): {why} [input: {}]",
                c.name,
                c.what,
                keep.display()
            ));
        }
    }
    Ok(row)
}

/// `… nodes.conf, line 12: …`
fn names_file_and_line(message: &str) -> bool {
    message.contains("nodes.conf")
        && message
            .split("line ")
            .skip(1)
            .any(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn print_table(t: &Table) {
    println!();
    println!(
        "nodes.conf torture: {} real files ({} bytes), {} truncations ({} inside the last line), {} random corruptions (seed {})",
        t.files,
        t.file_bytes.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(", "),
        t.truncations,
        t.last_line,
        t.random,
        t.seed
    );
    println!();
    let w = t
        .rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!(
        "{:w$}  {:^36}  {:^36}  {:>9}",
        "", "truncations", "random corruptions", "last line"
    );
    println!(
        "{:w$}  {:>8} {:>8} {:>8} {:>8}  {:>8} {:>8} {:>8} {:>8}  {:>9}",
        "build",
        "started",
        "refused",
        "crashed",
        "hung",
        "started",
        "refused",
        "crashed",
        "hung",
        "started"
    );
    for r in &t.rows {
        let (a, b) = (&r.truncations, &r.random);
        println!(
            "{:w$}  {:>8} {:>8} {:>8} {:>8}  {:>8} {:>8} {:>8} {:>8}  {:>9}",
            r.label,
            a.started,
            a.refused,
            a.crashed,
            a.hung,
            b.started,
            b.refused,
            b.crashed,
            b.hung,
            format!("{}/{}", r.last_line_started, t.last_line)
        );
    }
    println!();
    for r in &t.rows {
        if !r.crashes.is_empty() {
            let kinds: Vec<String> = r.crashes.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
            println!("{} crashes: {}", r.label, kinds.join(", "));
        }
        for (kind, case) in &r.examples {
            println!("  first {kind}: {case}");
        }
    }
    for r in &t.rows {
        println!("{}: {:.1}s", r.label, r.seconds);
        for v in r.violations.iter().take(20) {
            println!("  VIOLATION {v}");
        }
        if r.violations.len() > 20 {
            println!("  … and {} more", r.violations.len() - 20);
        }
    }
}

fn print_rejoin(r: &rejoin::RejoinReport) {
    println!(
        "rejoin: killed master {}; replica {} took over in {:.1}s",
        r.killed, r.promoted, r.failover_secs
    );
    println!("  nodes.conf cut to end in {:?}", r.cut_tail);
    println!("  upstream on that file: {}", r.upstream);
    println!("  patched: started, logged: {}", r.warning);
    println!(
        "  rejoined as {} {:.2}s after the restart; cluster_state:ok everywhere; currentEpoch {:?}",
        r.role, r.rejoin_secs, r.epochs
    );
}

fn print_crash(r: &crash_safety::CrashReport) {
    println!(
        "crash-safety: {} kill -9 under churn ({} commands, {} manual failovers); {} of {} surviving files complete and loaded; {} kills landed inside a save (temp file left, nodes.conf intact); cluster ok again in {:.1}s",
        r.kills, r.churn, r.failovers, r.loaded, r.kills, r.inside_save, r.settle_secs
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, in_last_line: bool, torn_tail: bool) -> Case {
        Case {
            name: name.into(),
            family: Family::Truncation,
            node: 0,
            in_last_line,
            torn_tail,
            what: "test".into(),
            bytes: b"x".to_vec(),
        }
    }

    fn probe(outcome: Outcome, untouched: bool, healed: &[&str]) -> Probe {
        Probe {
            outcome,
            untouched,
            healed: healed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn started() -> Outcome {
        Outcome::Started {
            id: "a".repeat(40),
            minted: false,
        }
    }

    #[test]
    fn a_patched_row_lists_every_broken_promise() {
        let refused = |m: &str| Outcome::Refused {
            message: m.into(),
            code: 1,
        };
        let cases = [
            case("ok", true, true),
            case("crash", false, false),
            case("hang", false, false),
            case("silent-heal", true, true),
            case("vague", false, false),
            case("changed", false, false),
            case("last-refused", true, false),
            case("minted", false, false),
            case("good-refusal", false, false),
        ];
        let probes = [
            probe(
                started(),
                true,
                &["Cluster config file nodes.conf, line 7: incomplete"],
            ),
            probe(
                Outcome::Crashed {
                    how: "SIGSEGV".into(),
                },
                true,
                &[],
            ),
            probe(Outcome::Hung, true, &[]),
            probe(started(), true, &[]),
            probe(
                refused("Unrecoverable error: corrupted cluster config file."),
                true,
                &[],
            ),
            probe(
                refused("cluster config file nodes.conf, line 2: bad"),
                false,
                &[],
            ),
            probe(
                refused("cluster config file nodes.conf, line 7: bad"),
                true,
                &[],
            ),
            probe(
                Outcome::Started {
                    id: "b".repeat(40),
                    minted: true,
                },
                true,
                &[],
            ),
            probe(
                refused("cluster config file nodes.conf, line 2: bad"),
                true,
                &[],
            ),
        ];
        let d = tempfile::tempdir().unwrap();
        let t = Target {
            label: "patched".into(),
            server: "redis-server".into(),
            sanitizer: false,
        };
        let row = summarize(&t, &cases, &probes, true, d.path()).unwrap();
        let broken: Vec<&str> = row
            .violations
            .iter()
            .map(|v| v.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            broken,
            [
                "crash",
                "hang",
                "silent-heal",
                "vague",
                "changed",
                "last-refused",
                "minted"
            ]
        );
        assert!(d.path().join("patched/crash.conf").is_file());
        assert_eq!(row.truncations.started, 3);
        assert_eq!(row.truncations.refused, 4);
        assert_eq!(row.last_line_started, 2);
        assert_eq!(row.crashes.get("SIGSEGV"), Some(&1));
        // Upstream's row is counted, never judged.
        let up = summarize(&t, &cases, &probes, false, d.path()).unwrap();
        assert!(up.violations.is_empty());
        assert_eq!(up.truncations.crashed, 1);
    }
}
