//! One `redis-server` start over one nodes.conf, classified as soon as the
//! outcome is known: started (the log says it is ready), refused (it exited
//! with a message), crashed (a signal, a bug report or a sanitizer report) or
//! hung. Runs go in parallel, each worker with its own folder and port.

use std::{
    fs,
    os::unix::process::ExitStatusExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::server;

/// The log line Redis writes once it serves clients (8.0 adds the listener
/// type: `Ready to accept connections tcp`).
pub const READY: &str = "Ready to accept connections";
/// Log lines that mean the server crashed even if it exited normally.
const CRASH_MARKERS: &[&str] = &[
    "REDIS BUG REPORT START",
    "ASSERTION FAILED",
    "Guru Meditation",
    "crashed by signal",
];
const SANITIZER_MARKERS: &[&str] = &[
    "ERROR: AddressSanitizer",
    "runtime error:",
    "ERROR: LeakSanitizer",
];
const CONFIG: &str = "nodes.conf";
/// Longer than any healthy start, even under a sanitizer on a busy machine.
const RUN_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` binary to torture.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub server: PathBuf,
    /// Built with AddressSanitizer: its reports count as crashes.
    pub sanitizer: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Started {
        /// The node id the server runs with.
        id: String,
        /// No configuration was loaded: the server minted a new id.
        minted: bool,
    },
    Refused {
        /// The last warning the server logged before exiting.
        message: String,
        code: i32,
    },
    Crashed {
        how: String,
    },
    Hung,
}

impl Outcome {
    pub fn column(&self) -> usize {
        match self {
            Outcome::Started { .. } => 0,
            Outcome::Refused { .. } => 1,
            Outcome::Crashed { .. } => 2,
            Outcome::Hung => 3,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub outcome: Outcome,
    /// nodes.conf holds exactly the input bytes after the run (checked for
    /// refusals: a refused file must be left as it was).
    pub untouched: bool,
    /// Warnings the loader logged while healing the file.
    pub healed: Vec<String>,
}

/// Options every torture start shares: cluster mode over `nodes.conf` in the
/// run folder, nothing persisted, log to `redis.log`.
pub fn server_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        CONFIG,
        "--cluster-node-timeout",
        "2000",
        "--dir",
        &dir.display().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        "redis.log",
        "--daemonize",
        "no",
    ]
    .map(String::from)
    .to_vec()
}

/// Start `target` over `bytes` as nodes.conf in `dir` (emptied first) on
/// `port`, classify, and stop it.
pub fn probe(target: &Target, bytes: &[u8], dir: &Path, port: u16) -> Result<Probe> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let conf = dir.join(CONFIG);
    fs::write(&conf, bytes).with_context(|| format!("writing {}", conf.display()))?;
    let log = dir.join("redis.log");
    let stderr = dir.join("stderr.log");
    let mut cmd = Command::new(&target.server);
    cmd.args(server_args(port, dir))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr)?);
    if target.sanitizer {
        // Leaks at exit are not crashes; any other report is.
        cmd.env(
            "ASAN_OPTIONS",
            "detect_leaks=0:halt_on_error=1:exitcode=99:handle_abort=1",
        );
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", target.server.display()))?;
    let outcome = watch(&mut child, &log, &stderr);
    let _ = child.kill();
    let _ = child.wait();
    let outcome = outcome?;
    let text = read_lossy(&log);
    Ok(Probe {
        untouched: fs::read(&conf).map(|b| b == bytes).unwrap_or(false),
        healed: text
            .lines()
            .filter(|l| l.contains(CONFIG) && l.contains("ignored"))
            .map(|l| message_of(l).to_string())
            .collect(),
        outcome,
    })
}

fn watch(child: &mut Child, log: &Path, stderr: &Path) -> Result<Outcome> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(500);
    loop {
        let exited = child.try_wait()?;
        let text = read_lossy(log);
        if let Some(how) = crashed(&text, stderr) {
            return Ok(Outcome::Crashed { how });
        }
        if exited.is_none() && text.contains(READY) {
            let (id, minted) = node_id(&text);
            return Ok(Outcome::Started { id, minted });
        }
        if let Some(status) = exited {
            // Read once more: the log may have grown between the two reads.
            let text = read_lossy(log);
            if let Some(how) = crashed(&text, stderr) {
                return Ok(Outcome::Crashed { how });
            }
            if let Some(sig) = status.signal() {
                return Ok(Outcome::Crashed {
                    how: signal_name(sig),
                });
            }
            let code = status.code().unwrap_or(-1);
            if code == 0 && text.contains(READY) {
                let (id, minted) = node_id(&text);
                return Ok(Outcome::Started { id, minted });
            }
            let message = text
                .lines()
                .rev()
                .find(|l| l.contains(" # "))
                .map(|l| message_of(l).to_string())
                .unwrap_or_else(|| "(nothing logged)".into());
            return Ok(Outcome::Refused { message, code });
        }
        if start.elapsed() > RUN_TIMEOUT {
            return Ok(Outcome::Hung);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// A crash the log or the sanitizer reported, named by its first cause:
/// the sanitizer's summary, the failed assertion, the panic message, or the
/// signal of Redis's own crash report.
fn crashed(log: &str, stderr: &Path) -> Option<String> {
    let err = read_lossy(stderr);
    if let Some(m) = SANITIZER_MARKERS.iter().find(|m| err.contains(**m)) {
        let summary = err.lines().find(|l| l.starts_with("SUMMARY:")).unwrap_or(m);
        return Some(summary.trim_start_matches("SUMMARY: ").to_string());
    }
    if !CRASH_MARKERS.iter().any(|m| log.contains(m)) {
        return None;
    }
    let after = |needle: &str| {
        log.lines().find_map(|l| {
            l.split_once(needle)
                .map(|(_, rest)| rest.trim().to_string())
        })
    };
    if let Some(what) = after("==> ") {
        return Some(format!(
            "assertion {}",
            what.trim_end_matches(" is not true")
        ));
    }
    if let Some(what) = after("Guru Meditation: ") {
        return Some(format!("panic: {what}"));
    }
    if let Some(sig) = after("crashed by signal: ") {
        let n = sig
            .split(',')
            .next()
            .and_then(|n| n.trim().parse::<i32>().ok());
        return Some(n.map_or(sig.clone(), signal_name));
    }
    Some("bug report".into())
}

/// A log as text: upstream Redis logs bytes from nodes.conf as they are, and
/// one invalid UTF-8 byte must not hide the rest of the log.
fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The id from "Node configuration loaded, I'm <id>" or, for a fresh node,
/// "No cluster configuration found, I'm <id>".
fn node_id(log: &str) -> (String, bool) {
    for line in log.lines() {
        if let Some((head, id)) = line.split_once("I'm ") {
            let id: String = id.chars().take(40).collect();
            return (id, head.contains("No cluster configuration found"));
        }
    }
    (String::new(), false)
}

/// The message part of a Redis log line (`pid:R date time.ms # message`).
pub fn message_of(line: &str) -> &str {
    for level in [" # ", " * ", " - ", " . "] {
        if let Some((_, m)) = line.split_once(level) {
            return m;
        }
    }
    line
}

fn signal_name(sig: i32) -> String {
    let name = match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// Probe every input on `jobs` workers; results in input order.
pub fn probe_all(
    target: &Target,
    inputs: &[&[u8]],
    jobs: usize,
    scratch: &Path,
) -> Result<Vec<Probe>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Probe>>> = Mutex::new(vec![None; inputs.len()]);
    let bar = ProgressBar::new(inputs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("  {prefix} [{elapsed}] {bar:30} {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(target.label.clone());
    let worker = |w: usize| -> Result<()> {
        let dir = scratch.join(format!("w{w}"));
        let mut port = server::free_cluster_port()?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= inputs.len() {
                return Ok(());
            }
            let mut tries = 0;
            let p = loop {
                let p = probe(target, inputs[i], &dir, port)?;
                // Another process took the port between runs: try a new one.
                let busy = matches!(&p.outcome, Outcome::Refused { .. })
                    && read_lossy(&dir.join("redis.log")).contains("Address already in use");
                if !busy || tries == 5 {
                    break p;
                }
                tries += 1;
                port = server::free_cluster_port()?;
            };
            results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(p);
            bar.inc(1);
        }
    };
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..jobs.max(1))
            .map(|w| s.spawn(move || worker(w)))
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("a torture worker panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results
        .into_iter()
        .enumerate()
        .map(|(i, p)| p.with_context(|| format!("input {i} was never run")))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn log_lines_are_parsed() {
        let log = "\
12:C 01 Jan 2024 00:00:00.000 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo
12:M 01 Jan 2024 00:00:00.001 * Node configuration loaded, I'm 0123456789abcdef0123456789abcdef01234567
12:M 01 Jan 2024 00:00:00.002 * Ready to accept connections";
        assert_eq!(
            node_id(log),
            ("0123456789abcdef0123456789abcdef01234567".into(), false)
        );
        assert!(node_id("1:M x * No cluster configuration found, I'm abc").1);
        assert_eq!(
            message_of("12:M 01 Jan 2024 00:00:00.000 # nodes.conf, line 3: bad"),
            "nodes.conf, line 3: bad"
        );
        let d = tempfile::tempdir().unwrap();
        let err = d.path().join("stderr");
        fs::write(&err, "==1==ERROR: AddressSanitizer: stack-buffer-overflow\nSUMMARY: AddressSanitizer: stack-buffer-overflow cluster.c:10 in f\n").unwrap();
        assert_eq!(
            crashed("", &err).as_deref(),
            Some("AddressSanitizer: stack-buffer-overflow cluster.c:10 in f")
        );
        fs::write(&err, "").unwrap();
        assert_eq!(
            crashed("=== REDIS BUG REPORT START: Cut & paste", &err).as_deref(),
            Some("bug report")
        );
        let assert = "1:M d # === ASSERTION FAILED ===\n1:M d # ==> cluster.c:333 'p != NULL' is not true\n1:M d # Redis 7.0.15 crashed by signal: 11, si_code: 1";
        assert_eq!(
            crashed(assert, &err).as_deref(),
            Some("assertion cluster.c:333 'p != NULL'")
        );
        let panic = "1:M d # Guru Meditation: Unknown flag in redis cluster config file #cluster.c:292\n1:M d # Redis 7.0.15 crashed by signal: 11, si_code: 1";
        assert_eq!(
            crashed(panic, &err).as_deref(),
            Some("panic: Unknown flag in redis cluster config file #cluster.c:292")
        );
        assert_eq!(
            crashed(
                "1:M d # Redis 7.0.15 crashed by signal: 11, si_code: 128",
                &err
            )
            .as_deref(),
            Some("SIGSEGV")
        );
        assert!(crashed(log, &err).is_none());
    }

    /// A stand-in server (a shell script) exercises each outcome.
    #[test]
    fn outcomes_are_classified() {
        let d = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let p = d.path().join(name);
            fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
            Target {
                label: name.into(),
                server: p,
                sanitizer: false,
            }
        };
        let started = script(
            "ok",
            "printf '1:M d t # Skipping unknown variable cu\\370rrentEpoch\\n' >> redis.log; echo \"1:M d t * Node configuration loaded, I'm 0123456789abcdef0123456789abcdef01234567\" >> redis.log; echo '1:M d t * Ready to accept connections' >> redis.log; exec sleep 30",
        );
        let refused = script(
            "refuse",
            "echo '1:M d t # nodes.conf, line 2: bad slot' >> redis.log; exit 1",
        );
        let crash = script("crash", "kill -SEGV $$");
        let run = |t: &Target| probe(t, b"x\n", &d.path().join("run"), 1).unwrap();
        let p = run(&started);
        assert!(
            matches!(p.outcome, Outcome::Started { minted: false, .. }),
            "{p:?}"
        );
        let p = run(&refused);
        assert_eq!(
            p.outcome,
            Outcome::Refused {
                message: "nodes.conf, line 2: bad slot".into(),
                code: 1
            }
        );
        assert!(p.untouched);
        assert_eq!(
            run(&crash).outcome,
            Outcome::Crashed {
                how: "SIGSEGV".into()
            }
        );
    }
}
