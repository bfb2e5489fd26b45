//! The checks of `host check`: each runs programs of the release through
//! the old loader and says what it saw, or why it failed.

use std::{fs, path::Path, time::Duration};

use anyhow::{bail, Context, Result};

use super::runner::{info, wait_for, Runner};
use crate::{
    server::{self, free_cluster_port, free_port, info_field, loopback_args},
    smoke::{self, TlsFiles},
};

/// The primary redis-server: plain TCP and TLS ports, its certificates.
pub(super) struct Primary {
    pub(super) port: u16,
    tls_port: u16,
    tls: TlsFiles,
}

impl Primary {
    pub(super) fn new(work: &Path) -> Result<Primary> {
        let tls = smoke::make_certificates(&work.join("tls"))?;
        Ok(Primary {
            port: free_port()?,
            tls_port: free_port()?,
            tls,
        })
    }

    pub(super) fn start(&self, r: &mut Runner) -> Result<String> {
        let mut args = loopback_args(self.port, &["--dbfilename", "dump.rdb"]);
        args.extend(self.tls.server_args(self.tls_port));
        r.server("redis-server", "primary", self.port, &args)?;
        Ok(format!("PONG on port {}", self.port))
    }
}

/// A check of the running primary.
type PrimaryCheck = fn(&mut Runner, &Primary) -> Result<String>;

/// The checks run once the primary answers, in order (the replica reads
/// what SET wrote, the checkers the files BGSAVE and the rewrite left).
pub(super) const ON_THE_PRIMARY: &[(&str, PrimaryCheck)] = &[
    ("PING over TLS (redis-cli --tls)", ping_tls),
    ("SET and GET", set_get),
    ("Lua EVAL", lua),
    ("BGSAVE (fork)", bgsave),
    ("AOF rewrite", aof_rewrite),
    ("a replica syncs", replica),
    ("redis-benchmark SET/GET", benchmark),
    ("redis-check-rdb on dump.rdb", check_rdb),
    ("redis-check-aof on the AOF", check_aof),
];

/// `answer` when it is `want`, else an error naming it.
fn expect(answer: String, want: &str, ok: impl FnOnce(&str) -> String) -> Result<String> {
    if answer == want {
        Ok(ok(&answer))
    } else {
        bail!("answered {answer}")
    }
}

fn ping_tls(r: &mut Runner, p: &Primary) -> Result<String> {
    let mut args = p.tls.client_args();
    args.extend(["-p".to_string(), p.tls_port.to_string(), "PING".to_string()]);
    let out = r.tool(
        "redis-cli",
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    expect(out.trim().to_string(), "PONG", str::to_string)
}

fn set_get(r: &mut Runner, p: &Primary) -> Result<String> {
    r.cli(p.port, &["SET", "greeting", "hello"])?;
    let o = r.cli(p.port, &["GET", "greeting"])?;
    if o == "hello" {
        Ok(format!("GET greeting = {o}"))
    } else {
        bail!("GET answered {o}")
    }
}

fn lua(r: &mut Runner, p: &Primary) -> Result<String> {
    let o = r.cli(
        p.port,
        &[
            "EVAL",
            "return redis.call('INCRBY', KEYS[1], ARGV[1])",
            "1",
            "counter",
            "41",
        ],
    )?;
    expect(o, "41", |o| format!("INCRBY from Lua = {o}"))
}

fn bgsave(r: &mut Runner, p: &Primary) -> Result<String> {
    let port = p.port;
    r.cli(port, &["BGSAVE"])?;
    let dump = r.work.join("primary/dump.rdb");
    wait_for("BGSAVE", Duration::from_secs(30), || {
        Ok(info(port, "persistence", "rdb_bgsave_in_progress")? == "0"
            && info(port, "persistence", "rdb_last_bgsave_status")? == "ok"
            && dump.is_file())
    })?;
    Ok("dump.rdb written by the child".to_string())
}

fn aof_rewrite(r: &mut Runner, p: &Primary) -> Result<String> {
    let port = p.port;
    r.cli(port, &["CONFIG", "SET", "appendonly", "yes"])?;
    wait_for("the first AOF rewrite", Duration::from_secs(30), || {
        Ok(info(port, "persistence", "aof_rewrite_in_progress")? == "0"
            && info(port, "persistence", "aof_rewrite_scheduled")? == "0"
            && info(port, "persistence", "aof_last_bgrewrite_status")? == "ok")
    })?;
    r.cli(port, &["SET", "after", "rewrite"])?;
    r.cli(port, &["BGREWRITEAOF"])?;
    wait_for("BGREWRITEAOF", Duration::from_secs(30), || {
        Ok(info(port, "persistence", "aof_rewrite_in_progress")? == "0"
            && info(port, "persistence", "aof_last_bgrewrite_status")? == "ok")
    })?;
    Ok("aof_last_bgrewrite_status:ok".to_string())
}

fn replica(r: &mut Runner, p: &Primary) -> Result<String> {
    let rport = free_port()?;
    let args = loopback_args(rport, &["--replicaof", "127.0.0.1", &p.port.to_string()]);
    r.server("redis-server", "replica", rport, &args)?;
    wait_for("the replica's link", Duration::from_secs(30), || {
        Ok(info(rport, "replication", "master_link_status")? == "up")
    })?;
    let v = r.cli(rport, &["GET", "greeting"])?;
    if v != "hello" {
        bail!("the replica holds greeting = {v}");
    }
    Ok("master_link_status:up, data replicated".to_string())
}

fn benchmark(r: &mut Runner, p: &Primary) -> Result<String> {
    let port = p.port.to_string();
    let o = r.tool(
        "redis-benchmark",
        &["-p", &port, "-t", "set,get", "-n", "2000", "-c", "5", "-q"],
    )?;
    let lines: Vec<&str> = o
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    if lines.len() < 2 {
        bail!("no SET and GET results in: {}", o.trim());
    }
    Ok(lines
        .iter()
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join("; "))
}

fn check_rdb(r: &mut Runner, _: &Primary) -> Result<String> {
    let dump = r.work.join("primary/dump.rdb").display().to_string();
    let o = r.tool("redis-check-rdb", &[&dump])?;
    if o.contains("RDB looks OK") {
        Ok("RDB looks OK".to_string())
    } else {
        bail!("{}", o.trim())
    }
}

/// `DEBUG SEGFAULT`: the crash handler prints a stack trace (glibc's
/// `backtrace`) and stops the background threads (`pthread_cancel`); on 2.11
/// both load the host's `libgcc_s.so.1`, and without a working one the
/// server aborts ("libgcc_s.so.1 must be installed …") or prints no trace.
pub(super) fn crash_report(r: &mut Runner) -> Result<String> {
    let port = free_port()?;
    let args = loopback_args(port, &["--enable-debug-command", "local"]);
    let i = r.server("redis-server", "crash", port, &args)?;
    // The connection drops with the server: the reply is no answer.
    let _ = crate::server::command(port, &["DEBUG", "SEGFAULT"], Duration::from_secs(10));
    let server = &mut r.servers[i];
    let mut status = None;
    wait_for(
        "the crashed server to exit",
        Duration::from_secs(30),
        || {
            status = server.child.try_wait()?;
            Ok(status.is_some())
        },
    )?;
    let log = fs::read_to_string(&server.log)
        .with_context(|| format!("reading {}", server.log.display()))?;
    if let Some(l) = log.lines().find(|l| l.contains("libgcc_s.so.1")) {
        bail!("the crash handler failed: {}", l.trim());
    }
    let trace = log
        .split_once("STACK TRACE")
        .map(|(_, t)| t)
        .with_context(|| format!("no stack trace in {}", server.log.display()))?;
    let frames = trace.lines().filter(|l| l.contains("[0x")).count();
    if frames < 3 {
        bail!(
            "a stack trace of {frames} frames in {}",
            server.log.display()
        );
    }
    Ok(format!(
        "{frames} frames, exit {}",
        status.map_or("?".into(), |s| s.to_string())
    ))
}

/// redis-check-aof on what the primary's AOF rewrite left: Redis 7's
/// manifest (appendonlydir/) or a single appendonly.aof.
fn check_aof(r: &mut Runner, _: &Primary) -> Result<String> {
    let dir = r.work.join("primary");
    let manifest = fs::read_dir(dir.join("appendonlydir")).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(".manifest"))
    });
    let target = match manifest {
        Some(m) => m,
        None => dir.join("appendonly.aof"),
    };
    let out = r.tool("redis-check-aof", &[&target.display().to_string()])?;
    if out.contains("is valid") {
        Ok(format!(
            "{} is valid",
            target.file_name().unwrap_or_default().to_string_lossy()
        ))
    } else {
        bail!("{}", out.trim())
    }
}

pub(super) fn sentinel(r: &mut Runner, monitored: u16) -> Result<String> {
    let port = free_port()?;
    let dir = r.work.join("sentinel");
    fs::create_dir_all(&dir)?;
    let conf = dir.join("sentinel.conf");
    fs::write(
        &conf,
        format!("port {port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 {monitored} 1\n"),
    )?;
    let args = vec![conf.display().to_string()];
    r.server("redis-sentinel", "sentinel", port, &args)?;
    let masters = r.cli(port, &["SENTINEL", "MASTERS"])?;
    if !masters.contains("mymaster") {
        bail!("SENTINEL MASTERS answered {masters}");
    }
    Ok(format!("monitors mymaster on port {monitored}"))
}

pub(super) fn cluster(r: &mut Runner) -> Result<String> {
    let mut ports = Vec::new();
    for i in 0..3 {
        let p = free_cluster_port()?;
        let args = loopback_args(p, &["--cluster-enabled", "yes"]);
        r.server("redis-server", &format!("cluster-{i}"), p, &args)?;
        ports.push(p);
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args: Vec<&str> = vec!["--cluster", "create"];
    args.extend(nodes.iter().map(String::as_str));
    args.push("--cluster-yes");
    r.tool("redis-cli", &args)?;
    for p in &ports {
        let p = *p;
        wait_for("cluster_state:ok", Duration::from_secs(30), || {
            let reply = server::command(p, &["CLUSTER", "INFO"], Duration::from_secs(5))?;
            Ok(info_field(&reply, "cluster_state") == Some("ok"))
        })?;
    }
    Ok(format!(
        "cluster_state:ok on ports {}",
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
