//! Old target hosts: the release run through an old C library's own loader.
//!
//! `cargo xtask host build [glibc-2.11]` builds a pinned glibc from source
//! with the host's gcc inside the sandbox (once, cached by its inputs) into
//! a host folder (`lib64/ld-linux-x86-64.so.2`, `libc.so.6`, …).
//! `cargo xtask host check [--host DIR]` runs every packaged program through
//! that folder's loader (`ld-linux-x86-64.so.2 --library-path …`; the kernel
//! is this machine's): a server over TCP and TLS, data, Lua, a fork for
//! BGSAVE, an AOF rewrite, a replica, a three-master cluster made by
//! redis-cli, redis-benchmark, redis-sentinel and the two checkers on the
//! files written. Anything the old loader prints is a failure.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    server::{self, free_cluster_port, free_port, info_field, Server},
    smoke,
};

/// The folders of a host copy that hold libraries, in search order: the
/// ones verify's `--against` searches.
const LIB_DIRS: &[&str] = elfcheck::hosts::SEARCH_DIRS;

/// A host's loader and library path.
#[derive(Debug, Clone)]
pub struct Loader {
    pub ld: PathBuf,
    pub library_path: String,
}

impl Loader {
    /// The loader of a host folder (a copy of an old system's `/lib64`,
    /// `/usr/lib64` … or a built host) and its library folders, plus `extra`
    /// folders searched after them.
    pub fn of(host: &Path, extra: &[PathBuf]) -> Result<Loader> {
        let ld = LIB_DIRS
            .iter()
            .map(|d| host.join(d).join("ld-linux-x86-64.so.2"))
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "{} has no ld-linux-x86-64.so.2 in {}: give a copy of a host's library folders",
                    host.display(),
                    LIB_DIRS.join(", ")
                )
            })?;
        let mut dirs: Vec<String> = LIB_DIRS
            .iter()
            .map(|d| host.join(d))
            .filter(|p| p.is_dir())
            .map(|p| p.display().to_string())
            .collect();
        dirs.extend(extra.iter().map(|p| p.display().to_string()));
        Ok(Loader {
            ld,
            library_path: dirs.join(":"),
        })
    }

    /// `program` run through this loader (argv[0] stays the program's path,
    /// so redis-server's aliases keep their meaning), in the C locale: the
    /// locale of this machine's environment (`C.UTF-8`, built into glibc
    /// only since 2.35) need not exist on the host, and Redis 8 refuses to
    /// start when `setlocale` fails ("Failed to configure LOCALE").
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(&self.ld);
        c.arg("--library-path")
            .arg(&self.library_path)
            .arg(program)
            .env("LC_ALL", "C");
        c
    }
}

/// Lines of a program's stderr that the loader wrote.
pub fn loader_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("error while loading shared libraries")
                || l.contains("ld-linux-x86-64.so.2:")
                || l.contains("version `GLIBC")
                || l.contains("relocation error")
                || l.contains("symbol lookup error")
                || l.contains("cannot open shared object file")
        })
        .map(str::to_string)
        .collect()
}

/// One check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// `portable-redis/host-check`.
    pub schema: &'static str,
    pub host: String,
    pub loader: String,
    pub steps: Vec<Step>,
    /// Everything the loader printed, by program.
    pub loader_messages: Vec<String>,
    pub passed: bool,
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "host {} (loader {}):", self.host, self.loader)?;
        for s in &self.steps {
            writeln!(
                f,
                "  {:<5} {:<34} {}",
                if s.ok { "ok" } else { "FAIL" },
                s.name,
                s.detail
            )?;
        }
        for m in &self.loader_messages {
            writeln!(f, "  loader: {m}")?;
        }
        writeln!(f, "{}", if self.passed { "passed" } else { "FAILED" })
    }
}

/// Programs run through the loader, their stderr kept for the loader check.
struct Runner<'a> {
    loader: &'a Loader,
    bin: &'a Path,
    work: &'a Path,
    stderr_files: Vec<PathBuf>,
    servers: Vec<Server>,
}

impl Runner<'_> {
    /// A file for one process's stderr.
    fn stderr_file(&mut self, name: &str) -> Result<fs::File> {
        let p = self.work.join(format!("{name}.stderr"));
        let f = fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
        self.stderr_files.push(p);
        Ok(f)
    }

    /// Start `program` (redis-server or redis-sentinel) in `work/name`.
    fn server(&mut self, program: &str, name: &str, port: u16, args: &[String]) -> Result<usize> {
        let mut cmd = self.loader.command(&self.bin.join(program));
        cmd.stderr(Stdio::from(self.stderr_file(name)?));
        let mut s = Server::spawn_command(cmd, &self.work.join(name), port, args)?;
        s.wait_ready(Duration::from_secs(30))
            .with_context(|| format!("{program} ({name}) through the old loader"))?;
        self.servers.push(s);
        Ok(self.servers.len() - 1)
    }

    /// Run a tool through the loader; its stdout.
    fn tool(&mut self, program: &str, args: &[&str]) -> Result<String> {
        let name = format!("{program}-{}", self.stderr_files.len());
        let stderr = self.stderr_file(&name)?;
        let out = self
            .loader
            .command(&self.bin.join(program))
            .args(args)
            .current_dir(self.work)
            .stdin(Stdio::null())
            .stderr(Stdio::from(stderr))
            .output()
            .with_context(|| format!("running {program} through the old loader"))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!(
                "{program} {} exited with {}: {}",
                args.join(" "),
                out.status,
                text.trim()
            );
        }
        Ok(text)
    }

    fn cli(&mut self, port: u16, args: &[&str]) -> Result<String> {
        let p = port.to_string();
        let mut a = vec!["-p", p.as_str()];
        a.extend_from_slice(args);
        Ok(self.tool("redis-cli", &a)?.trim().to_string())
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    loop {
        if f()? {
            return Ok(());
        }
        if start.elapsed() > timeout {
            bail!("{what}: not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn info(port: u16, section: &str, field: &str) -> Result<String> {
    let reply = server::command(port, &["INFO", section], Duration::from_secs(5))?;
    Ok(info_field(&reply, field).unwrap_or("").to_string())
}

/// Run the release's programs in `bin` through `loader`, in `work`.
pub fn check(host: &Path, loader: &Loader, bin: &Path, work: &Path) -> Result<HostReport> {
    if work.exists() {
        crate::fsutil::make_writable_and_remove(work)?;
    }
    fs::create_dir_all(work)?;
    let mut r = Runner {
        loader,
        bin,
        work,
        stderr_files: Vec::new(),
        servers: Vec::new(),
    };
    let mut steps = Vec::new();
    let mut step = |name: &str, res: Result<String>| {
        let (ok, detail) = match res {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}").replace('\n', " ")),
        };
        steps.push(Step {
            name: name.to_string(),
            ok,
            detail,
        });
        ok
    };

    let tls = smoke::make_certificates(&work.join("tls"))?;
    let s = |p: &Path| p.display().to_string();
    let (port, tls_port) = (free_port()?, free_port()?);
    let primary: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &s(&tls.cert),
        "--tls-key-file",
        &s(&tls.key),
        "--tls-ca-cert-file",
        &s(&tls.ca),
        "--tls-auth-clients",
        "no",
        "--save",
        "",
        "--dbfilename",
        "dump.rdb",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let started = step(
        "redis-server starts",
        r.server("redis-server", "primary", port, &primary)
            .map(|_| format!("PONG on port {port}")),
    );
    if started {
        let ca = s(&tls.ca);
        let tp = tls_port.to_string();
        step(
            "PING over TLS (redis-cli --tls)",
            r.tool("redis-cli", &["--tls", "--cacert", &ca, "-p", &tp, "PING"])
                .map(|o| o.trim().to_string())
                .and_then(|o| {
                    if o == "PONG" {
                        Ok(o)
                    } else {
                        bail!("answered {o}")
                    }
                }),
        );
        step(
            "SET and GET",
            r.cli(port, &["SET", "greeting", "hello"])
                .and_then(|_| r.cli(port, &["GET", "greeting"]))
                .and_then(|o| {
                    if o == "hello" {
                        Ok(format!("GET greeting = {o}"))
                    } else {
                        bail!("GET answered {o}")
                    }
                }),
        );
        step(
            "Lua EVAL",
            r.cli(
                port,
                &[
                    "EVAL",
                    "return redis.call('INCRBY', KEYS[1], ARGV[1])",
                    "1",
                    "counter",
                    "41",
                ],
            )
            .and_then(|o| {
                if o == "41" {
                    Ok(format!("INCRBY from Lua = {o}"))
                } else {
                    bail!("answered {o}")
                }
            }),
        );
        step(
            "BGSAVE (fork)",
            r.cli(port, &["BGSAVE"]).and_then(|_| {
                wait_for("BGSAVE", Duration::from_secs(30), || {
                    Ok(info(port, "persistence", "rdb_bgsave_in_progress")? == "0"
                        && info(port, "persistence", "rdb_last_bgsave_status")? == "ok"
                        && r.work.join("primary/dump.rdb").is_file())
                })?;
                Ok("dump.rdb written by the child".to_string())
            }),
        );
        step(
            "AOF rewrite",
            r.cli(port, &["CONFIG", "SET", "appendonly", "yes"])
                .and_then(|_| {
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
                }),
        );
        let rport = free_port()?;
        let replica: Vec<String> = [
            "--port",
            &rport.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--replicaof",
            "127.0.0.1",
            &port.to_string(),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        step(
            "a replica syncs",
            r.server("redis-server", "replica", rport, &replica)
                .and_then(|_| {
                    wait_for("the replica's link", Duration::from_secs(30), || {
                        Ok(info(rport, "replication", "master_link_status")? == "up")
                    })?;
                    let v = r.cli(rport, &["GET", "greeting"])?;
                    if v != "hello" {
                        bail!("the replica holds greeting = {v}");
                    }
                    Ok("master_link_status:up, data replicated".to_string())
                }),
        );
        step(
            "redis-benchmark SET/GET",
            r.tool(
                "redis-benchmark",
                &[
                    "-p",
                    &port.to_string(),
                    "-t",
                    "set,get",
                    "-n",
                    "2000",
                    "-c",
                    "5",
                    "-q",
                ],
            )
            .and_then(|o| {
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
            }),
        );
        step(
            "redis-check-rdb on dump.rdb",
            r.tool("redis-check-rdb", &[&s(&r.work.join("primary/dump.rdb"))])
                .and_then(|o| {
                    if o.contains("RDB looks OK") {
                        Ok("RDB looks OK".to_string())
                    } else {
                        bail!("{}", o.trim())
                    }
                }),
        );
        step("redis-check-aof on the AOF", check_aof(&mut r));
    }
    step("a crash report with its stack trace", crash_report(&mut r));
    step("redis-sentinel starts", sentinel(&mut r, port));
    step("redis-cli --cluster create (3 masters)", cluster(&mut r));

    for s in &mut r.servers {
        let _ = s.kill();
    }
    let mut messages = Vec::new();
    for f in &r.stderr_files {
        let text = fs::read_to_string(f).unwrap_or_default();
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        messages.extend(
            loader_messages(&text)
                .into_iter()
                .map(|m| format!("{name}: {m}")),
        );
    }
    let passed = steps.iter().all(|s| s.ok) && messages.is_empty();
    Ok(HostReport {
        schema: "portable-redis/host-check",
        host: host.display().to_string(),
        loader: loader.ld.display().to_string(),
        steps,
        loader_messages: messages,
        passed,
    })
}

/// `DEBUG SEGFAULT`: the crash handler prints a stack trace (glibc's
/// `backtrace`) and stops the background threads (`pthread_cancel`); on 2.11
/// both load the host's `libgcc_s.so.1`, and without a working one the
/// server aborts ("libgcc_s.so.1 must be installed …") or prints no trace.
fn crash_report(r: &mut Runner) -> Result<String> {
    let port = free_port()?;
    let args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]
    .iter()
    .chain(&["--enable-debug-command", "local"])
    .map(|x| x.to_string())
    .collect();
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
fn check_aof(r: &mut Runner) -> Result<String> {
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

fn sentinel(r: &mut Runner, monitored: u16) -> Result<String> {
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

fn cluster(r: &mut Runner) -> Result<String> {
    let mut ports = Vec::new();
    for i in 0..3 {
        let p = free_cluster_port()?;
        let args: Vec<String> = [
            "--port",
            &p.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--save",
            "",
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_loaders_words() {
        let stderr = "./redis-server: /lib64/libc.so.6: version `GLIBC_2.14' not found (required by ./redis-server)\n\
                      12:C 01 Jan # Redis is starting\n\
                      ./x: error while loading shared libraries: libssl.so.3: cannot open shared object file: No such file or directory\n";
        let m = loader_messages(stderr);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("GLIBC_2.14"));
        assert!(m[1].contains("libssl.so.3"));
    }

    #[test]
    fn finds_the_loader_and_library_folders_of_a_host_copy() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("lib64")).unwrap();
        fs::create_dir_all(d.path().join("usr/lib64")).unwrap();
        fs::write(d.path().join("lib64/ld-linux-x86-64.so.2"), b"").unwrap();
        let l = Loader::of(d.path(), &[PathBuf::from("/extra")]).unwrap();
        assert!(l.ld.ends_with("lib64/ld-linux-x86-64.so.2"));
        let dirs: Vec<&str> = l.library_path.split(':').collect();
        assert_eq!(dirs.len(), 3);
        assert!(
            dirs[0].ends_with("lib64") && dirs[1].ends_with("usr/lib64") && dirs[2] == "/extra"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(format!("{:#}", Loader::of(empty.path(), &[]).unwrap_err())
            .contains("no ld-linux-x86-64.so.2"));
    }
}
