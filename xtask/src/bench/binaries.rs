//! The binaries: the packaged redis-server against Debian's `redis-server`
//! (the same 7.0.15 line, built by gcc), both driven by the packaged
//! `redis-benchmark` on loopback, plain and TLS, with and without pipelining.
//!
//! Both servers run side by side with one private configuration file (never
//! the system service); each benchmark run starts from `FLUSHALL`, and within
//! a round the two servers alternate which is measured first.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use super::report::{Row, Section, Target, Unit};
use crate::{
    server::{self, free_port, Server},
    smoke::{self, TlsFiles},
};

/// Debian's server, from its package.
pub const DEBIAN_SERVER: &str = "/usr/bin/redis-server";
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

#[derive(Debug, Clone, Copy)]
struct Scenario {
    tls: bool,
    pipeline: u32,
}

impl Scenario {
    fn requests(&self, opts: &BinaryOptions) -> u64 {
        if self.pipeline > 1 {
            opts.pipelined_requests
        } else {
            opts.requests
        }
    }

    fn label(&self) -> String {
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

pub fn run(release_bin: &Path, work: &Path, opts: &BinaryOptions) -> Result<Vec<Section>> {
    let debian = debian_server()?;
    let tls = smoke::make_certificates(&work.join("tls"))?;
    let conf = work.join("bench.conf");
    fs::write(&conf, config_text(&tls)).with_context(|| format!("writing {}", conf.display()))?;

    let mut contenders = Vec::new();
    for (label, binary) in [
        ("portable", release_bin.join("redis-server")),
        ("debian", debian),
    ] {
        let port = free_port()?;
        let tls_port = free_port()?;
        let args = [
            conf.display().to_string(),
            "--port".into(),
            port.to_string(),
            "--tls-port".into(),
            tls_port.to_string(),
        ];
        let mut server = Server::spawn(&binary, &work.join(label), port, &args)?;
        server
            .wait_ready(Duration::from_secs(20))
            .with_context(|| format!("starting {}", binary.display()))?;
        contenders.push(Contender {
            label,
            server,
            tls_port,
        });
    }
    let mut notes = Vec::new();
    for c in &contenders {
        let info = server::command(c.server.port, &["INFO"], Duration::from_secs(5))?;
        notes.push(format!("{}: {}.", c.label, server_facts(&info)));
    }

    let scenarios = [
        Scenario {
            tls: false,
            pipeline: 1,
        },
        Scenario {
            tls: false,
            pipeline: opts.pipeline,
        },
        Scenario {
            tls: true,
            pipeline: 1,
        },
        Scenario {
            tls: true,
            pipeline: opts.pipeline,
        },
    ];
    let benchmark = release_bin.join("redis-benchmark");
    // rps[scenario][test][contender], cpu[scenario][contender] (µs per request)
    let mut rps = vec![vec![[Vec::new(), Vec::new()]; TESTS.len()]; scenarios.len()];
    let mut cpu = vec![[Vec::new(), Vec::new()]; scenarios.len()];
    for round in 0..opts.rounds {
        for (si, sc) in scenarios.iter().enumerate() {
            for c in &contenders {
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
                    rps[si][ti][side].push(run_benchmark(&benchmark, c, *sc, test, &tls, opts)?);
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
    for c in &mut contenders {
        c.server.kill()?;
    }

    let mut rows = Vec::new();
    let mut cpu_rows = Vec::new();
    for (si, sc) in scenarios.iter().enumerate() {
        for (ti, t) in TESTS.iter().enumerate() {
            let [a, b] = rps[si][ti].clone();
            rows.push(Row::compare(
                &format!("{t}, {}", sc.label()),
                Unit::RequestsPerSecond,
                a,
                b,
                Some(Target::RatioAtLeast { value: 1.0 }),
            )?);
        }
        let [a, b] = cpu[si].clone();
        cpu_rows.push(Row::compare(
            &format!("SET+GET+INCR+LPUSH, {}", sc.label()),
            Unit::Microseconds,
            a,
            b,
            None,
        )?);
    }
    notes.push(format!(
        "Each run: the packaged redis-benchmark with one test (SET, GET, INCR, LPUSH in that \
         order, the two servers alternating which goes first), {} clients, {} requests ({} \
         with pipelining), keys drawn from 100000, FLUSHALL before each scenario; both servers \
         from one private configuration file on loopback, no persistence; {} rounds.",
        opts.clients, opts.requests, opts.pipelined_requests, opts.rounds
    ));
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

/// The server's CPU time so far (user + system), from `INFO cpu`.
fn server_cpu(port: u16) -> Result<f64> {
    let info = server::command(port, &["INFO", "cpu"], Duration::from_secs(5))?;
    cpu_seconds(&info).with_context(|| format!("INFO cpu on port {port} has no used_cpu_*"))
}

/// `used_cpu_sys + used_cpu_user` of an `INFO` reply.
pub fn cpu_seconds(info: &str) -> Option<f64> {
    let field = |k: &str| -> Option<f64> {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(k))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("used_cpu_sys:")? + field("used_cpu_user:")?)
}

fn config_text(tls: &TlsFiles) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Private configuration for cargo xtask bench.");
    let _ = writeln!(c, "bind 127.0.0.1");
    let _ = writeln!(c, "save \"\"");
    let _ = writeln!(c, "appendonly no");
    let _ = writeln!(c, "daemonize no");
    let _ = writeln!(c, "tls-cert-file {}", tls.cert.display());
    let _ = writeln!(c, "tls-key-file {}", tls.key.display());
    let _ = writeln!(c, "tls-ca-cert-file {}", tls.ca.display());
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
        cmd.arg("--tls")
            .arg("--cacert")
            .arg(&tls.ca)
            .arg("--cert")
            .arg(&tls.cert)
            .arg("--key")
            .arg(&tls.key);
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
    let field = |k: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{k}:")))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    format!(
        "Redis {}, {} (compiler reports gcc_version {}), {}-bit",
        field("redis_version"),
        field("mem_allocator"),
        field("gcc_version"),
        field("arch_bits")
    )
}

/// Debian's redis-server, installed with apt when missing. The package's own
/// service is never used: the bench starts the binary with its own config.
fn debian_server() -> Result<PathBuf> {
    let path = PathBuf::from(DEBIAN_SERVER);
    if !path.exists() {
        install_debian_server()?;
    }
    let sh = Shell::new()?;
    let version = cmd!(sh, "{path} --version")
        .quiet()
        .read()
        .with_context(|| format!("running {} --version", path.display()))?;
    eprintln!("  binaries: Debian's server: {}", version.trim());
    Ok(path)
}

fn install_debian_server() -> Result<()> {
    let sh = Shell::new()?;
    let root = cmd!(sh, "id -u").quiet().read().map(|u| u.trim() == "0")?;
    if !root {
        bail!(
            "Debian's redis-server ({DEBIAN_SERVER}) is missing and installing it needs root.\n\
             fix: sudo apt-get install redis-server   (or run: cargo xtask bench --only build)"
        );
    }
    if !Path::new("/usr/sbin/policy-rc.d").exists() {
        eprintln!(
            "  binaries: note: without /usr/sbin/policy-rc.d the package may start its system \
             service; the bench never uses it"
        );
    }
    eprintln!("  binaries: installing Debian's redis-server package with apt-get");
    let apt = |args: &[&str]| -> Result<()> {
        let out = cmd!(sh, "apt-get {args...}")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .quiet()
            .ignore_status()
            .output()?;
        if !out.status.success() {
            bail!(
                "apt-get {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    };
    let install = [
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "redis-server",
    ];
    if apt(&install).is_err() {
        apt(&["update", "-qq"])?;
        apt(&install).context("installing Debian's redis-server")?;
    }
    if !Path::new(DEBIAN_SERVER).exists() {
        bail!("apt-get installed redis-server but {DEBIAN_SERVER} is missing");
    }
    Ok(())
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
