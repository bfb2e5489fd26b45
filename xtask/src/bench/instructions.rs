//! Instructions per request: the packaged redis-server and Debian's, each
//! run under valgrind's callgrind, which counts the instructions the server
//! executes in user space. For the same binary and the same requests the
//! count is the same whatever the machine is doing, so a 10 % gain shows,
//! where the CPU-time rows' noise (±10 %) hides it.
//!
//! Each workload runs on a fresh server: started under callgrind, driven by
//! the packaged redis-benchmark (one client, so the event loop takes the
//! requests one at a time, or pipelined), then shut down cleanly so
//! callgrind writes its totals. A run with no requests (start, PING,
//! shutdown) is subtracted: what is left is the requests' own work.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{
    binaries::Scenario,
    debian::DebianServer,
    report::{Row, Section, Target, Unit},
    Side,
};
use crate::{
    server::{self, free_port, Server},
    smoke::TlsFiles,
};

/// A workload: its name and redis-benchmark's arguments for it.
pub struct Workload {
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// Requests it makes per `-n` (a `-t set,get` run makes two).
    pub per_n: u64,
}

/// The requests measured: redis-benchmark's own tests, 1 KiB values, and a
/// Lua script.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "SET",
        args: &["-t", "set"],
        per_n: 1,
    },
    Workload {
        name: "GET",
        args: &["-t", "get"],
        per_n: 1,
    },
    Workload {
        name: "INCR",
        args: &["-t", "incr"],
        per_n: 1,
    },
    Workload {
        name: "LPUSH",
        args: &["-t", "lpush"],
        per_n: 1,
    },
    Workload {
        name: "LRANGE_100",
        args: &["-t", "lpush,lrange_100"],
        per_n: 2,
    },
    Workload {
        name: "HSET",
        args: &["-t", "hset"],
        per_n: 1,
    },
    Workload {
        name: "ZADD",
        args: &["-t", "zadd"],
        per_n: 1,
    },
    Workload {
        name: "SET+GET 1 KiB",
        args: &["-t", "set,get", "-d", "1024"],
        per_n: 2,
    },
    Workload {
        name: "EVAL",
        args: &[
            "EVAL",
            "redis.call('INCR', KEYS[1]) return redis.call('GET', KEYS[1])",
            "1",
            "key:__rand_int__",
        ],
        per_n: 1,
    },
];

#[derive(Debug, Clone)]
pub struct InstructionOptions {
    /// Requests per workload (`-n`).
    pub requests: u64,
    /// The pipeline depth of the pipelined rows.
    pub pipeline: u32,
}

/// Callgrind's count of `binary`'s instructions (in user space) from start
/// to a clean shutdown, with `drive` run against its plain and TLS ports
/// in between.
fn count(
    side: &Side,
    conf: &Path,
    work: &Path,
    drive: impl FnOnce(u16, u16) -> Result<()>,
) -> Result<u64> {
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    let out = work.join("callgrind.out");
    let (port, tls_port) = (free_port()?, free_port()?);
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .args(side.runner.argv(&side.binary))
        .stderr(Stdio::null());
    let args = super::binaries::server_args(conf, port, tls_port);
    let mut server = Server::spawn_command(cmd, work, port, &args)
        .context("starting valgrind (apt-get install valgrind)")?;
    server
        .wait_ready(Duration::from_secs(120))
        .with_context(|| format!("starting {} under callgrind", side.binary.display()))?;
    drive(port, tls_port)?;
    // A clean exit, so callgrind writes its totals; the reply may be lost.
    let _ = server::command(port, &["SHUTDOWN", "NOSAVE"], Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = server.child.try_wait()? {
            if !status.success() {
                bail!(
                    "{} under callgrind exited with {status}; log:\n{}",
                    side.binary.display(),
                    server.log_tail()
                );
            }
            break;
        }
        if Instant::now() > deadline {
            bail!("{} did not shut down within 120 s", side.binary.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&out)
        .with_context(|| format!("reading callgrind's output {}", out.display()))?;
    totals(&text).with_context(|| format!("{} has no totals line", out.display()))
}

/// The instruction count of a callgrind output file (`summary:` or
/// `totals:`, the first event of which is `Ir`).
pub fn totals(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Instructions per request of each workload on both sides, TCP and TLS,
/// without and with pipelining: one row each, A against B, with
/// `mix_target` on the TCP mix's row (all workloads together, no
/// pipeline).
pub fn run(
    sides: &[Side; 2],
    bench_bin: &Path,
    conf: &Path,
    tls: &TlsFiles,
    work: &Path,
    opts: &InstructionOptions,
    mix_target: Option<Target>,
) -> Result<Section> {
    let benchmark = bench_bin.join("redis-benchmark");
    let mut baseline = [0u64; 2];
    for (i, side) in sides.iter().enumerate() {
        baseline[i] = count(
            side,
            conf,
            &work.join(format!("{}-idle", side.label)),
            |_, _| Ok(()),
        )?;
        eprintln!("  instructions: {} idle: {}", side.label, baseline[i]);
    }
    let mut rows = Vec::new();
    let mut retried = Vec::new();
    for (tls_on, pipeline) in [
        (false, 1),
        (false, opts.pipeline),
        (true, 1),
        (true, opts.pipeline),
    ] {
        let scenario = Scenario {
            tls: tls_on,
            pipeline,
        }
        .label();
        let mut mix = [0f64; 2];
        let mut mix_requests = 0u64;
        for w in WORKLOADS {
            let requests = opts.requests * w.per_n;
            let mut per = [0f64; 2];
            for (i, side) in sides.iter().enumerate() {
                let dir = work
                    .join(format!("{}-{}-{}-{}", side.label, w.name, tls_on, pipeline))
                    .to_string_lossy()
                    .replace([' ', '+'], "_");
                let run_once = |attempt: u32| {
                    count(
                        side,
                        conf,
                        &Path::new(&dir).join(attempt.to_string()),
                        |port, tls_port| {
                            drive(
                                &benchmark,
                                w,
                                if tls_on { tls_port } else { port },
                                tls_on.then_some(tls),
                                pipeline,
                                opts.requests,
                            )
                        },
                    )
                };
                // A run that fails (redis-benchmark losing its connection
                // to the slowed-down server) is run once more on a fresh
                // server: the count of a whole run does not depend on it.
                let total = match run_once(1) {
                    Ok(total) => total,
                    Err(e) => {
                        eprintln!(
                            "  instructions: {scenario}, {} on {}: {e:#}; once more",
                            w.name, side.label
                        );
                        retried.push(format!("{scenario}, {} ({})", w.name, side.label));
                        run_once(2)?
                    }
                };
                let own = total.saturating_sub(baseline[i]);
                per[i] = own as f64 / requests as f64;
                mix[i] += own as f64;
            }
            mix_requests += requests;
            eprintln!(
                "  instructions: {scenario}, {}: {:.0} against {:.0} a request",
                w.name, per[0], per[1]
            );
            rows.push(Row::compare(
                &format!("{scenario}, {}", w.name),
                Unit::Instructions,
                vec![per[0]],
                vec![per[1]],
                None,
            )?);
        }
        let target = (!tls_on && pipeline == 1).then_some(mix_target).flatten();
        rows.push(Row::compare(
            &format!("{scenario}, all workloads"),
            Unit::Instructions,
            vec![mix[0] / mix_requests as f64],
            vec![mix[1] / mix_requests as f64],
            target,
        )?);
    }
    Ok(Section {
        id: "instructions".into(),
        title: "redis-server instructions per request (callgrind, user space, the server's \
                start and shutdown subtracted; lower is better; the same for the same binary \
                whatever the machine's load)"
            .into(),
        a: sides[0].label.into(),
        b: Some(sides[1].label.into()),
        rows,
        notes: std::iter::once(format!(
            "{} requests a workload from one redis-benchmark client (the packaged one), random \
             keys from a keyspace of 10,000; each workload on a fresh server.",
            opts.requests
        ))
        .chain((!retried.is_empty()).then(|| {
            format!(
                "Run a second time after a failed first run: {}.",
                retried.join("; ")
            )
        }))
        .collect(),
    })
}

/// The release's `bin/` against Debian's server, with the binaries part's
/// private configuration.
pub fn against_debian(
    release_bin: &Path,
    debian: &DebianServer,
    work: &Path,
    opts: &InstructionOptions,
) -> Result<Section> {
    let sides = [
        Side::native("portable", release_bin.join("redis-server")),
        Side::debian(debian),
    ];
    let tls = crate::smoke::make_certificates(&work.join("tls"))?;
    let conf = work.join("bench.conf");
    std::fs::write(&conf, super::binaries::config_text(&tls))
        .with_context(|| format!("writing {}", conf.display()))?;
    run(
        &sides,
        release_bin,
        &conf,
        &tls,
        work,
        opts,
        Some(Target::RatioAtMost { value: 0.85 }),
    )
}

/// redis-benchmark's run of `w` against `port`.
fn drive(
    benchmark: &Path,
    w: &Workload,
    port: u16,
    tls: Option<&TlsFiles>,
    pipeline: u32,
    requests: u64,
) -> Result<()> {
    let mut cmd = Command::new(benchmark);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", "1"])
        .args(["-n", &requests.to_string(), "-r", "10000"])
        .args(["-P", &pipeline.to_string(), "-q"]);
    if let Some(tls) = tls {
        cmd.args(tls.client_args());
    }
    let out = cmd
        .args(w.args)
        .output()
        .with_context(|| format!("running {}", benchmark.display()))?;
    if !out.status.success() {
        bail!(
            "redis-benchmark {} failed: {}",
            w.name,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callgrind_totals_are_read() {
        let text = "version: 1\ncreator: callgrind-3.19.0\nevents: Ir\n\nfn=main\n1 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(totals(text), Some(123456));
        assert_eq!(totals("events: Ir\ntotals: 42 7\n"), Some(42));
        assert_eq!(totals("events: Ir\n"), None);
    }
}
