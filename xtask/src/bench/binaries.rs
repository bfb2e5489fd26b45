//! The binaries: the packaged redis-server against Debian's `redis-server`
//! of the same version (built by gcc, run from its own root: see
//! [`super::debian`]), both driven by the packaged
//! `redis-benchmark` on loopback, plain and TLS, with and without pipelining.
//!
//! Both servers run side by side with one private configuration file (never
//! the system service); each benchmark run starts from `FLUSHALL`, and within
//! a round the two servers alternate which is measured first.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::{
    debian::DebianServer,
    report::{Row, Section, Target, Unit},
    Side,
};
use crate::{
    server::{self, free_port, Server},
    smoke::{self, TlsFiles},
};

/// The commands measured, in redis-benchmark's names and order (GET after
/// SET, so it finds keys).
pub const TESTS: [&str; 4] = ["SET", "GET", "INCR", "LPUSH"];

#[derive(Debug, Clone)]
pub struct BinaryOptions {
    pub rounds: usize,
    /// Requests per test without pipelining.
    pub requests: u64,
    /// Requests per test with pipelining.
    pub pipelined_requests: u64,
    pub pipeline: u32,
    pub clients: u32,
}

/// TCP or TLS, with or without pipelining.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scenario {
    pub(super) tls: bool,
    pub(super) pipeline: u32,
}

impl Scenario {
    fn requests(&self, opts: &BinaryOptions) -> u64 {
        if self.pipeline > 1 {
            opts.pipelined_requests
        } else {
            opts.requests
        }
    }

    pub(super) fn label(&self) -> String {
        format!(
            "{}, {}",
            if self.tls { "TLS" } else { "TCP" },
            if self.pipeline > 1 {
                format!("pipeline {}", self.pipeline)
            } else {
                "no pipeline".into()
            }
        )
    }
}

/// One server under test.
struct Contender {
    label: &'static str,
    server: Server,
    tls_port: u16,
}

/// Throughput samples `[scenario][test][contender]` and server CPU per
/// request in µs `[scenario][contender]`, one of each per round.
struct Samples {
    rps: Vec<Vec<[Vec<f64>; 2]>>,
    cpu: Vec<[Vec<f64>; 2]>,
}

/// Measure the release's `bin/` against Debian's server, working in
/// `work`.
pub fn run(
    release_bin: &Path,
    debian: &DebianServer,
    work: &Path,
    opts: &BinaryOptions,
) -> Result<Vec<Section>> {
    let sides = [
        Side::native("portable", release_bin.join("redis-server")),
        Side::debian(debian),
    ];
    let (rows, cpu_rows, notes) = duel(&sides, release_bin, work, opts, Some(1.0))?;
    Ok(vec![
        Section {
            id: "binaries".into(),
            title: "redis-server throughput: the portable release against Debian's package \
                    (requests per second, higher is better)"
                .into(),
            a: "portable".into(),
            b: Some("debian".into()),
            rows,
            notes,
        },
        Section {
            id: "binaries_cpu".into(),
            title: "redis-server CPU time per request (user + system, from INFO cpu; lower is \
                    better; less sensitive to the machine's load than throughput)"
                .into(),
            a: "portable".into(),
            b: Some("debian".into()),
            rows: cpu_rows,
            notes: vec![],
        },
    ])
}

/// The price of static: the static (musl) release's redis-server against the
/// default release's, both driven by the default release's redis-benchmark.
pub fn run_static(
    static_bin: &Path,
    default_bin: &Path,
    work: &Path,
    opts: &BinaryOptions,
) -> Result<Vec<Section>> {
    let sides = [
        Side::native("static", static_bin.join("redis-server")),
        Side::native("glibc", default_bin.join("redis-server")),
    ];
    let (rows, cpu_rows, notes) = duel(&sides, default_bin, work, opts, None)?;
    Ok(vec![
        Section {
            id: "static_cpu".into(),
            title: "The static (musl) release's redis-server against the glibc release's: CPU \
                    time per request (user + system, from INFO cpu; lower is better)"
                .into(),
            a: "static".into(),
            b: Some("glibc".into()),
            rows: cpu_rows,
            notes,
        },
        Section {
            id: "static".into(),
            title: "The static (musl) release's redis-server against the glibc release's: \
                    throughput (requests per second, higher is better)"
                .into(),
            a: "static".into(),
            b: Some("glibc".into()),
            rows,
            notes: vec![],
        },
    ])
}

/// The two servers side by side from one private configuration, driven by
/// `bench_bin`'s redis-benchmark: throughput rows (with `at_least` as each
/// row's target ratio), CPU-per-request rows, and the notes.
fn duel(
    sides: &[Side; 2],
    bench_bin: &Path,
    work: &Path,
    opts: &BinaryOptions,
    at_least: Option<f64>,
) -> Result<(Vec<Row>, Vec<Row>, Vec<String>)> {
    let tls = smoke::make_certificates(&work.join("tls"))?;
    let conf = work.join("bench.conf");
    fs::write(&conf, config_text(&tls)).with_context(|| format!("writing {}", conf.display()))?;
    let mut contenders = Vec::new();
    for s in sides {
        contenders.push(start(s, &conf, work)?);
    }
    let mut notes = Vec::new();
    for c in &contenders {
        let info = server::command(c.server.port, &["INFO"], Duration::from_secs(5))?;
        notes.push(format!("{}: {}.", c.label, server_facts(&info)));
    }

    let scenarios = [
        (false, 1),
        (false, opts.pipeline),
        (true, 1),
        (true, opts.pipeline),
    ]
    .map(|(tls, pipeline)| Scenario { tls, pipeline });
    let samples = measure(
        &bench_bin.join("redis-benchmark"),
        &contenders,
        &scenarios,
        &tls,
        opts,
    )?;
    for c in &mut contenders {
        c.server.kill()?;
    }

    let mut rows = Vec::new();
    let mut cpu_rows = Vec::new();
    for (si, sc) in scenarios.iter().enumerate() {
        for (ti, t) in TESTS.iter().enumerate() {
            let [a, b] = samples.rps[si][ti].clone();
            rows.push(Row::compare(
                &format!("{t}, {}", sc.label()),
                Unit::RequestsPerSecond,
                a,
                b,
                at_least.map(|value| Target::RatioAtLeast { value }),
            )?);
        }
        let [a, b] = samples.cpu[si].clone();
        cpu_rows.push(Row::compare(
            &format!("SET+GET+INCR+LPUSH, {}", sc.label()),
            Unit::Microseconds,
            a,
            b,
            None,
        )?);
    }
    notes.push(format!(
        "Each run: redis-benchmark with one test (SET, GET, INCR, LPUSH in that \
         order, the two servers alternating which goes first), {} clients, {} requests ({} \
         with pipelining), keys drawn from 100000, FLUSHALL before each scenario; both servers \
         from one private configuration file on loopback, no persistence; {} rounds.",
        opts.clients, opts.requests, opts.pipelined_requests, opts.rounds
    ));
    Ok((rows, cpu_rows, notes))
}

/// `side` started from the shared configuration on free ports, in
/// `work/label`.
fn start(side: &Side, conf: &Path, work: &Path) -> Result<Contender> {
    let (port, tls_port) = (free_port()?, free_port()?);
    let args = server_args(conf, port, tls_port);
    let mut cmd = side.runner.command(&side.binary);
    cmd.stderr(Stdio::null());
    let mut server = Server::spawn_command(cmd, &work.join(side.label), port, &args)
        .with_context(|| format!("starting {}", side.binary.display()))?;
    server
        .wait_ready(Duration::from_secs(20))
        .with_context(|| format!("starting {}", side.binary.display()))?;
    Ok(Contender {
        label: side.label,
        server,
        tls_port,
    })
}

/// Every round: each scenario from FLUSHALL, each test on both servers, the
/// two alternating which goes first.
fn measure(
    benchmark: &Path,
    contenders: &[Contender],
    scenarios: &[Scenario],
    tls: &TlsFiles,
    opts: &BinaryOptions,
) -> Result<Samples> {
    let mut rps = vec![vec![[Vec::new(), Vec::new()]; TESTS.len()]; scenarios.len()];
    let mut cpu = vec![[Vec::new(), Vec::new()]; scenarios.len()];
    for round in 0..opts.rounds {
        for (si, sc) in scenarios.iter().enumerate() {
            for c in contenders {
                server::command(c.server.port, &["FLUSHALL"], Duration::from_secs(30))?;
            }
            let mut cpu_seconds = [0.0; 2];
            for (ti, test) in TESTS.iter().enumerate() {
                let order = if (round + si + ti) % 2 == 0 {
                    [0, 1]
                } else {
                    [1, 0]
                };
                for side in order {
                    let c = &contenders[side];
                    let before = server_cpu(c.server.port)?;
                    rps[si][ti][side].push(run_benchmark(benchmark, c, *sc, test, tls, opts)?);
                    cpu_seconds[side] += server_cpu(c.server.port)? - before;
                }
            }
            let requests = (sc.requests(opts) * TESTS.len() as u64) as f64;
            for side in 0..2 {
                cpu[si][side].push(cpu_seconds[side] / requests * 1e6);
            }
        }
        eprintln!("  binaries: round {}/{} done", round + 1, opts.rounds);
    }
    Ok(Samples { rps, cpu })
}

/// The server's CPU time so far (user + system), from `INFO cpu`.
fn server_cpu(port: u16) -> Result<f64> {
    let info = server::command(port, &["INFO", "cpu"], Duration::from_secs(5))?;
    cpu_seconds(&info).with_context(|| format!("INFO cpu on port {port} has no used_cpu_*"))
}

/// `used_cpu_sys + used_cpu_user` of an `INFO` reply.
pub fn cpu_seconds(info: &str) -> Option<f64> {
    let field = |k: &str| -> Option<f64> { server::info_field(info, k)?.parse().ok() };
    Some(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// A bench server's arguments: the shared configuration, its two ports.
pub(super) fn server_args(conf: &Path, port: u16, tls_port: u16) -> [String; 5] {
    [
        conf.display().to_string(),
        "--port".into(),
        port.to_string(),
        "--tls-port".into(),
        tls_port.to_string(),
    ]
}

pub(super) fn config_text(tls: &TlsFiles) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Private configuration for cargo xtask bench.");
    let _ = writeln!(c, "bind 127.0.0.1");
    let _ = writeln!(c, "save \"\"");
    let _ = writeln!(c, "appendonly no");
    let _ = writeln!(c, "daemonize no");
    for (directive, value) in tls.server_settings() {
        let _ = writeln!(c, "{directive} {value}");
    }
    c
}

fn run_benchmark(
    benchmark: &Path,
    c: &Contender,
    sc: Scenario,
    test: &str,
    tls: &TlsFiles,
    opts: &BinaryOptions,
) -> Result<f64> {
    let port = if sc.tls { c.tls_port } else { c.server.port };
    let mut cmd = Command::new(benchmark);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &opts.clients.to_string()])
        .args(["-n", &sc.requests(opts).to_string()])
        .args(["-P", &sc.pipeline.to_string()])
        .args(["-r", "100000", "-t", &test.to_lowercase(), "--csv"]);
    if sc.tls {
        cmd.args(tls.client_args());
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", benchmark.display()))?;
    if !out.status.success() {
        bail!(
            "redis-benchmark {test} against {} ({}) failed ({}): {}\nserver log:\n{}",
            c.label,
            sc.label(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            c.server.log_tail()
        );
    }
    let results = parse_csv(&String::from_utf8_lossy(&out.stdout))?;
    results
        .get(test)
        .copied()
        .with_context(|| format!("redis-benchmark printed no {test} result for {}", c.label))
}

/// `redis-benchmark --csv` output: test name → requests per second.
pub fn parse_csv(text: &str) -> Result<BTreeMap<String, f64>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        if fields.len() < 2 || fields[0] == "test" || !line.starts_with('"') {
            continue;
        }
        let rps: f64 = fields[1]
            .parse()
            .with_context(|| format!("redis-benchmark line `{line}`: rps is not a number"))?;
        out.insert(fields[0].to_string(), rps);
    }
    if out.is_empty() {
        bail!("redis-benchmark printed no CSV results:\n{text}");
    }
    Ok(out)
}

/// The compiler, allocator and version from `INFO server`.
pub fn server_facts(info: &str) -> String {
    let field = |k: &str| server::info_field(info, k).unwrap_or("?");
    format!(
        "Redis {}, {} (compiler reports gcc_version {}), {}-bit",
        field("redis_version"),
        field("mem_allocator"),
        field("gcc_version"),
        field("arch_bits")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_results_are_read_by_test_name() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\
                    \"SET\",\"86956.52\",\"0.303\",\"0.100\"\n\
                    \"GET\",\"90909.09\",\"0.290\",\"0.096\"\n\
                    \"INCR\",\"88495.58\",\"0.297\",\"0.100\"\n\
                    \"LPUSH\",\"83333.34\",\"0.313\",\"0.104\"\n";
        let r = parse_csv(text).unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r["GET"], 90909.09);
        assert_eq!(r["LPUSH"], 83333.34);
        assert!(parse_csv("\"test\",\"rps\"\n").is_err());
        let err = parse_csv("\"GET\",\"fast\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("not a number"));
    }

    #[test]
    fn cpu_time_is_user_plus_system() {
        let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\n\
                    used_cpu_sys_children:9.0\r\n";
        assert_eq!(cpu_seconds(info), Some(3.75));
        assert_eq!(cpu_seconds("used_cpu_sys:1.0\r\n"), None);
    }

    #[test]
    fn server_facts_name_compiler_and_allocator() {
        let info = "# Server\r\nredis_version:7.0.15\r\nmem_allocator:jemalloc-5.3.0\r\n\
                    gcc_version:12.2.0\r\narch_bits:64\r\n";
        assert_eq!(
            server_facts(info),
            "Redis 7.0.15, jemalloc-5.3.0 (compiler reports gcc_version 12.2.0), 64-bit"
        );
        assert!(server_facts("").contains("Redis ?"));
    }

    #[test]
    fn the_private_config_names_the_certificates_and_no_persistence() {
        let tls = TlsFiles {
            ca: "/w/ca.crt".into(),
            cert: "/w/redis.crt".into(),
            key: "/w/redis.key".into(),
        };
        let c = config_text(&tls);
        assert!(c.contains("bind 127.0.0.1\n"));
        assert!(c.contains("save \"\"\n") && c.contains("appendonly no\n"));
        assert!(c.contains("tls-cert-file /w/redis.crt\n"));
        assert!(c.contains("tls-ca-cert-file /w/ca.crt\n"));
    }
}
