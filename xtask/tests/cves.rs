//! The security fixes proven by behaviour. Each reproduction runs against two
//! real servers built the same way: upstream as released (the line's
//! portability patches only, `torture::builds::upstream_bin`) and the
//! packaged release. The release must answer as the fix says; upstream must
//! crash, hang or answer what the fix forbids. Every outcome is printed
//! (`cargo test --test cves -- --nocapture`) and collected in
//! `target/e2e/cve-reproductions.txt`.
//!
//! Not reproduced here: CVE-2025-49844 and CVE-2024-46981 (Lua garbage
//! collector timing, no deterministic trigger), CVE-2026-81934 (a race
//! between two pending TLS connections), CVE-2025-48367 (needs accept() to
//! fail repeatedly), CVE-2025-46819 and the HyperLogLog 2 GB hash length
//! (need strings of more than 1 GB), CVE-2024-31449 (the CVE's input,
//! `bit.tohex(65535, -2147483648)`, negates INT_MIN: zig's clang folds the
//! undefined negation, and the upstream build answers `0000FFFF` like the
//! fixed one).
//!
//! Where upstream's memory error need not crash a normal build (a double
//! free, a read past a buffer into mapped memory, a use after free), the
//! upstream side is built with AddressSanitizer by the host's gcc
//! (`torture::builds::upstream_asan_bin`), which reports it every time.

mod common;

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use common::{release, repo_root, scratch};
use xtask::server::{free_cluster_port, free_port, loopback_args, Server};

// ---------------------------------------------------------------------------
// The two builds

fn upstream(line: &str) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(line) {
        return p.clone();
    }
    let project = xtask::project::Project::discover(None).unwrap();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bin = xtask::torture::builds::upstream_bin(&project, Some(line), jobs)
        .unwrap_or_else(|e| panic!("building upstream {line}: {e:#}"));
    map.insert(line.to_string(), bin.clone());
    bin
}

/// The same upstream built with AddressSanitizer (host gcc, no TLS, libc
/// malloc), for the memory errors a normal build survives by chance.
fn upstream_asan(line: &str) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = map.get(line) {
        return p.clone();
    }
    let project = xtask::project::Project::discover(None).unwrap();
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let bin = xtask::torture::builds::upstream_asan_bin(&project, Some(line), jobs)
        .unwrap_or_else(|e| panic!("building upstream {line} with ASan: {e:#}"));
    map.insert(line.to_string(), bin.clone());
    bin
}

/// `(upstream with ASan bin/, release bin/)` of a line.
fn builds_asan(line: &str) -> (PathBuf, PathBuf) {
    let rel = release(line).bin;
    (upstream_asan(line), rel)
}

/// `(upstream bin/, release bin/)` of a line.
fn builds(line: &str) -> (PathBuf, PathBuf) {
    // The release first: its dist also builds the OpenSSL both share.
    let rel = release(line).bin;
    (upstream(line), rel)
}

// ---------------------------------------------------------------------------
// A RESP connection that takes bytes

#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    fn text(&self) -> String {
        match self {
            Reply::Status(s) => s.clone(),
            Reply::Error(e) => format!("(error) {e}"),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) => "(nil)".into(),
            Reply::Array(items) => format!(
                "[{}]",
                items.iter().map(Reply::text).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Conn {
    fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_write_timeout(Some(Duration::from_secs(20)))?;
        Ok(Conn { s, buf: Vec::new() })
    }

    fn call(&mut self, args: &[&[u8]]) -> std::io::Result<Reply> {
        self.s.write_all(&encode(args))?;
        self.reply()
    }

    fn cmd(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.call(&a)
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 65536];
        let n = self.s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn line(&mut self) -> std::io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let l = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(l);
            }
            self.fill()?;
        }
    }

    fn reply(&mut self) -> std::io::Result<Reply> {
        let l = self.line()?;
        let (kind, rest) = l.split_at(1.min(l.len()));
        let num = |s: &str| s.parse::<i64>().unwrap_or(-1);
        Ok(match kind {
            "+" => Reply::Status(rest.into()),
            "-" => Reply::Error(rest.into()),
            ":" => Reply::Int(num(rest)),
            "$" if num(rest) < 0 => Reply::Bulk(None),
            "$" => {
                let n = num(rest) as usize;
                while self.buf.len() < n + 2 {
                    self.fill()?;
                }
                let b = self.buf[..n].to_vec();
                self.buf.drain(..n + 2);
                Reply::Bulk(Some(b))
            }
            "*" => {
                let n = num(rest);
                let mut items = Vec::new();
                for _ in 0..n.max(0) {
                    items.push(self.reply()?);
                }
                Reply::Array(items)
            }
            _ => Reply::Error(format!("unparsable reply line {l:?}")),
        })
    }

    /// Whatever the server sends within `wait`, raw.
    fn raw(&mut self, wait: Duration) -> Vec<u8> {
        let _ = self.s.set_read_timeout(Some(wait));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.fill().is_err() {
                break;
            }
        }
        std::mem::take(&mut self.buf)
    }
}

// ---------------------------------------------------------------------------
// One server, one scenario

/// How a server went down.
#[derive(Debug, Clone, PartialEq)]
enum Down {
    /// The process ended: killed by `signal`, or exited (a sanitizer exits
    /// 1 after its report, named in `sanitizer`).
    Ended {
        status: String,
        signal: Option<i32>,
        sanitizer: Option<String>,
        log: Option<String>,
    },
    /// Alive, but PING goes unanswered.
    Hung(String),
}

impl Down {
    fn describe(&self) -> String {
        match self {
            Down::Ended {
                status,
                sanitizer,
                log,
                ..
            } => format!(
                "crashed: {status}{}",
                sanitizer
                    .as_ref()
                    .or(log.as_ref())
                    .map(|s| format!(", log: {s}"))
                    .unwrap_or_default()
            ),
            Down::Hung(how) => format!("does not answer PING ({how})"),
        }
    }
}

/// How a server came out of a scenario.
#[derive(Debug)]
struct Outcome {
    /// What the scenario observed, or the harness failure that stopped it.
    answer: Result<String, String>,
    /// `Some(how)` when the server died or stopped answering.
    down: Option<Down>,
}

impl Outcome {
    fn describe(&self) -> String {
        let answer = match &self.answer {
            Ok(a) => a.clone(),
            Err(e) => format!("no answer: {e}"),
        };
        match &self.down {
            Some(how) => format!("{} ({answer})", how.describe()),
            None => answer,
        }
    }
}

/// What upstream must show: the vulnerable behaviour itself, never merely
/// "not what the release answered".
enum Shows {
    /// Killed by this signal (`SIGSEGV`, `SIGABRT`).
    Signal(i32),
    /// A sanitizer report of one of these kinds (`heap-use-after-free`).
    Sanitizer(&'static [&'static str]),
    /// Alive, but PING unanswered (the hang may cut the scenario short:
    /// the command that triggers it never returns).
    Hang,
    /// Alive, PING unanswered, and the scenario ran to its end first (the
    /// trigger is one step among several that must all have happened).
    HangAfterScenario,
    /// The answer the fix forbids.
    Answer(&'static str, fn(&str) -> bool),
}

const SIGABRT: i32 = 6;
const SIGSEGV: i32 = 11;

impl Shows {
    fn describe(&self) -> String {
        match self {
            Shows::Signal(s) => format!("a crash by signal {s}"),
            Shows::Sanitizer(kinds) => format!("a sanitizer report of {}", kinds.join(" or ")),
            Shows::Hang => "a hang (PING unanswered)".into(),
            Shows::HangAfterScenario => {
                "a hang (PING unanswered) after every step of the scenario ran".into()
            }
            Shows::Answer(what, _) => what.to_string(),
        }
    }

    /// Whether `o` shows it. A harness failure counts only as the
    /// consequence of a crash or hang that shows it.
    fn shown_by(&self, o: &Outcome) -> bool {
        match (self, &o.down) {
            (Shows::Signal(want), Some(Down::Ended { signal, .. })) => *signal == Some(*want),
            (Shows::Sanitizer(kinds), Some(Down::Ended { sanitizer, .. })) => {
                sanitizer.as_deref().is_some_and(|s| {
                    kinds
                        .iter()
                        .any(|k| s.contains(&format!("AddressSanitizer: {k} ")))
                })
            }
            (Shows::Hang, Some(Down::Hung(_))) => true,
            (Shows::HangAfterScenario, Some(Down::Hung(_))) => o.answer.is_ok(),
            (Shows::Answer(_, vulnerable), _) => o.answer.as_deref().is_ok_and(vulnerable),
            _ => false,
        }
    }
}

struct Run {
    server: Server,
    port: u16,
}

fn start(bin: &Path, dir: &Path, port: u16, extra: &[&str]) -> Run {
    let mut args = loopback_args(
        port,
        &["--appendonly", "no", "--enable-debug-command", "yes"],
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    // A sanitizer build reports into the run's folder.
    std::fs::create_dir_all(dir).unwrap();
    let asan = format!("log_path={}/asan:detect_leaks=0", dir.display());
    let mut server = Server::spawn_env(
        &bin.join("redis-server"),
        dir,
        port,
        &args,
        &[("ASAN_OPTIONS", Path::new(&asan))],
    )
    .unwrap();
    server.wait_ready(Duration::from_secs(30)).unwrap();
    Run { server, port }
}

/// The first line of a sanitizer report in `dir`, if one was written.
fn asan_report(dir: &Path) -> Option<String> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("asan"))
        .find_map(|e| {
            std::fs::read_to_string(e.path())
                .ok()?
                .lines()
                .find(|l| l.contains("ERROR: AddressSanitizer"))
                .map(|l| l.split("ERROR: ").nth(1).unwrap_or(l).to_string())
        })
}

impl Run {
    /// Whether the server still answers; how it went down if not.
    fn down(&mut self) -> Option<Down> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            if let Ok(Some(status)) = self.server.child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                let log = self.server.log_tail();
                return Some(Down::Ended {
                    status: status.to_string(),
                    signal: status.signal(),
                    sanitizer: asan_report(&self.server.dir),
                    log: log
                        .lines()
                        .find(|l| l.contains("crashed by signal") || l.contains("ASSERTION FAILED"))
                        .map(|l| l.trim().to_string()),
                });
            }
            let alive = Conn::open(self.port).and_then(|mut c| {
                c.s.set_read_timeout(Some(Duration::from_secs(2)))?;
                c.cmd(&["PING"])
            });
            match &alive {
                Ok(Reply::Status(s)) if s == "PONG" => return None,
                // Up: any error reply (a password asked for, busy with a
                // script, loading) is an answer.
                Ok(Reply::Error(_)) => return None,
                _ => {}
            }
            if Instant::now() > deadline {
                return Some(Down::Hung(format!("{alive:?}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Run `scenario` against a fresh server of `bin` and report the outcome.
fn scenario(
    bin: &Path,
    dir: &Path,
    extra: &[&str],
    scenario: impl FnOnce(&mut Run) -> Result<String, String>,
) -> Outcome {
    let port = free_port().unwrap();
    let mut run = start(bin, dir, port, extra);
    let answer = scenario(&mut run);
    let down = run.down();
    Outcome { answer, down }
}

/// Both builds through the same scenario.
fn both(
    line: &str,
    name: &str,
    extra: &[&str],
    f: impl Fn(&mut Run) -> Result<String, String>,
) -> (Outcome, Outcome) {
    let (up, rel) = builds(line);
    let dir = scratch(&format!("cve-{line}-{name}"));
    let u = scenario(&up, &dir.join("upstream"), extra, &f);
    let r = scenario(&rel, &dir.join("release"), extra, &f);
    (u, r)
}

/// [`both`] with the sanitizer build of upstream.
fn both_asan(
    line: &str,
    name: &str,
    extra: &[&str],
    f: impl Fn(&mut Run) -> Result<String, String>,
) -> (Outcome, Outcome) {
    let (up, rel) = builds_asan(line);
    let dir = scratch(&format!("cve-{line}-{name}"));
    let u = scenario(&up, &dir.join("upstream-asan"), extra, &f);
    let r = scenario(&rel, &dir.join("release"), extra, &f);
    (u, r)
}

fn record(line: &str, cve: &str, upstream: &Outcome, release: &Outcome) {
    static FILE: Mutex<()> = Mutex::new(());
    let _g = FILE.lock().unwrap_or_else(|e| e.into_inner());
    let text = format!(
        "{cve} (Redis {line}): upstream: {} | release: {}\n",
        upstream
            .describe()
            .replace('\r', "\\r")
            .replace('\n', "\\n"),
        release.describe().replace('\r', "\\r").replace('\n', "\\n")
    );
    eprint!("{text}");
    // This run's outcomes only: the first record of the process starts the file.
    static STARTED: OnceLock<()> = OnceLock::new();
    let first = STARTED.set(()).is_ok();
    let path = repo_root().join("target/e2e/cve-reproductions.txt");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(!first)
        .truncate(first)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The release answers `want` and stays up; upstream shows the vulnerable
/// behaviour itself. A harness failure on either side (no cluster formed,
/// no sync, a refused connection) fails the test with its cause.
fn check(
    line: &str,
    cve: &str,
    (u, r): (Outcome, Outcome),
    want: impl Fn(&str) -> bool,
    upstream_shows: Shows,
) {
    record(line, cve, &u, &r);
    if let Err(e) = verdict(&u, &r, want, &upstream_shows) {
        panic!("{cve}: {e}");
    }
}

/// [`check`]'s judgement, apart from the record.
fn verdict(
    u: &Outcome,
    r: &Outcome,
    want: impl Fn(&str) -> bool,
    upstream_shows: &Shows,
) -> Result<(), String> {
    let answer = r
        .answer
        .as_ref()
        .map_err(|e| format!("the harness failed on the release: {e}"))?;
    if r.down.is_some() {
        return Err(format!("the release went down: {}", r.describe()));
    }
    if !want(answer) {
        return Err(format!("the release answered {answer:?}"));
    }
    if upstream_shows.shown_by(u) {
        return Ok(());
    }
    Err(match &u.answer {
        Err(e) => format!(
            "the harness failed on upstream ({e}), and upstream did not show {}: {}",
            upstream_shows.describe(),
            u.describe()
        ),
        Ok(_) => format!(
            "upstream did not show {}: {}; the reproduction proves nothing",
            upstream_shows.describe(),
            u.describe()
        ),
    })
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn eval(run: &mut Run, script: &str) -> Result<String, String> {
    let mut c = Conn::open(run.port).map_err(io)?;
    c.cmd(&["EVAL", script, "0"]).map(|r| r.text()).map_err(io)
}

// ---------------------------------------------------------------------------
// Lua

#[test]
fn cve_2025_46817_lua_unpack_range_7_0() {
    let r = both("7.0", "unpack", &[], |run| {
        eval(run, "return {unpack({1,2,3}, -2, 2147483647)}")
    });
    check(
        "7.0",
        "CVE-2025-46817",
        r,
        |a| a.contains("too many results to unpack"),
        Shows::Hang,
    );
}

#[test]
fn cve_2025_46818_lua_basic_type_metatables_7_0() {
    let r = both("7.0", "metatable", &[], |run| {
        eval(run, "getmetatable('').__index = function() return 1 end")
    });
    check(
        "7.0",
        "CVE-2025-46818",
        r,
        |a| a.contains("Attempt to modify a readonly table"),
        Shows::Answer("the string metatable changed (nil)", |a| a == "(nil)"),
    );
}

#[test]
fn cve_2025_67733_error_reply_crlf_7_0() {
    let r = both("7.0", "crlf", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        // A script that raises an error reply carrying CR LF.
        c.s.write_all(&encode(&[
            b"EVAL",
            b"error(redis.error_reply('X\\r\\n+INJECTED'))",
            b"0",
        ]))
        .map_err(io)?;
        let raw = c.raw(Duration::from_millis(500));
        Ok(String::from_utf8_lossy(&raw).into_owned())
    });
    // One reply line, the CR and LF blanked; upstream sends two.
    check(
        "7.0",
        "CVE-2025-67733",
        r,
        |a| a.starts_with("-ERR X  +INJECTED") && a.matches("\r\n").count() == 1,
        Shows::Answer("a second, injected reply on the wire", |a| {
            a.contains("\r\n+INJECTED")
        }),
    );
}

// ---------------------------------------------------------------------------
// Patterns, ACL selectors, HyperLogLog

#[test]
fn cve_2024_31228_long_nested_glob_7_0() {
    let r = both("7.0", "glob", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        // Each `*?` of the pattern recurses once more on a long enough
        // key: 200,000 levels overflow the main thread's stack.
        c.call(&[b"SET", "a".repeat(200_000).as_bytes(), b"1"])
            .map_err(io)?;
        c.s.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        c.call(&[b"KEYS", "*?".repeat(200_000).as_bytes()])
            .map(|r| r.text().chars().take(40).collect())
            .map_err(io)
    });
    check(
        "7.0",
        "CVE-2024-31228",
        r,
        |a| a == "[]",
        Shows::Signal(SIGSEGV),
    );
}

#[test]
fn cve_2024_31227_malformed_acl_selector_7_0() {
    let r = both("7.0", "acl-selector", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        let set = c
            .cmd(&["ACL", "SETUSER", "key-permission-RW", "%~"])
            .map_err(io)?;
        let get = c
            .cmd(&["ACL", "GETUSER", "key-permission-RW"])
            .map(|r| r.text())
            .unwrap_or_else(|e| e.to_string());
        Ok(format!("{} / {get}", set.text()))
    });
    check(
        "7.0",
        "CVE-2024-31227",
        r,
        |a| a.starts_with("(error) ERR Error in ACL SETUSER modifier '%~': Syntax error"),
        Shows::Signal(SIGABRT),
    );
}

#[test]
fn cve_2024_51741_acl_key_pattern_without_tilde_7_0() {
    let r = both("7.0", "acl-rw", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        // A selector with neither permissions nor a key pattern.
        let set = c
            .cmd(&["ACL", "SETUSER", "key-permission-RW", "%"])
            .map_err(io)?;
        let get = c
            .cmd(&["ACL", "GETUSER", "key-permission-RW"])
            .map(|r| r.text())
            .unwrap_or_else(|e| e.to_string());
        Ok(format!("{} / {get}", set.text()))
    });
    check(
        "7.0",
        "CVE-2024-51741",
        r,
        |a| a.starts_with("(error) ERR Error in ACL SETUSER modifier '%': Syntax error"),
        Shows::Signal(SIGABRT),
    );
}

/// A sparse HyperLogLog whose XZERO run lengths add up past 4 GB, then a
/// VAL opcode: the register index overflows.
fn corrupt_hll() -> Vec<u8> {
    let mut pl = b"HYLL".to_vec();
    pl.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let runlen: u16 = 16384 - 1;
    for _ in 0..(131_072 + 1000) {
        pl.push(0b0100_0000 | (runlen >> 8) as u8);
        pl.push((runlen & 0xff) as u8);
    }
    pl.push(0b1111_1111);
    pl
}

#[test]
fn cve_2025_32023_hyperloglog_overflow_7_0() {
    let r = both("7.0", "hll", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        c.call(&[b"SET", b"hll", &corrupt_hll()]).map_err(io)?;
        c.cmd(&["PFCOUNT", "hll", "hll"])
            .map(|r| r.text())
            .map_err(io)
    });
    check(
        "7.0",
        "CVE-2025-32023",
        r,
        |a| a.contains("INVALIDOBJ"),
        Shows::Signal(SIGSEGV),
    );
}

// ---------------------------------------------------------------------------
// Unauthenticated clients

#[test]
fn cve_2025_21605_unauthenticated_output_buffer_7_0() {
    let r = both("7.0", "noauth", &[], |run| {
        Conn::open(run.port)
            .and_then(|mut a| a.cmd(&["CONFIG", "SET", "requirepass", "secret"]))
            .map_err(io)?;
        let mut c = Conn::open(run.port).map_err(io)?;
        c.s.set_write_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        // Requests that each earn a NOAUTH error, never read.
        let batch = encode(&[b"SET", b"x", b"5"]).repeat(10_000);
        let mut sent = 0usize;
        let mut closed = None;
        for _ in 0..100 {
            match c.s.write_all(&batch) {
                Ok(()) => sent += batch.len(),
                Err(e) => {
                    closed = Some(e.to_string());
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut admin = Conn::open(run.port).map_err(io)?;
        admin.cmd(&["AUTH", "secret"]).map_err(io)?;
        let list = admin
            .cmd(&["CLIENT", "LIST"])
            .map(|r| r.text())
            .map_err(io)?;
        // The sending client by its own address, with its reply buffer.
        let me = format!("addr={} ", c.s.local_addr().map_err(io)?);
        let omem: Option<u64> = list.lines().find(|l| l.contains(&me)).map(|l| {
            l.split(' ')
                .find_map(|w| w.strip_prefix("omem="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        });
        Ok(match (closed, omem) {
            (Some(e), _) => format!("disconnected after {} KiB of requests ({e})", sent / 1024),
            (None, None) => format!(
                "disconnected: after {} KiB of requests the client is gone",
                sent / 1024
            ),
            (None, Some(omem)) => format!(
                "still connected after {} KiB of requests, {} KiB of replies buffered",
                sent / 1024,
                omem / 1024
            ),
        })
    });
    check(
        "7.0",
        "CVE-2025-21605",
        r,
        |a| a.starts_with("disconnected"),
        Shows::Answer("the client kept with its replies buffered", |a| {
            a.starts_with("still connected")
        }),
    );
}

// ---------------------------------------------------------------------------
// RESTORE payloads

/// Debian's own regression payload for CVE-2026-66373: a stream (type 15,
/// RDB 9) whose two consumers both own pending entry 0-1.
const SHARED_NACK: &[u8] = b"\x0f\x01\x10\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x25\x25\x00\x00\x00\x0a\x00\x01\x01\x00\x01\x01\x01\x85\x66\x69\x65\x6c\x64\x06\x00\x01\x02\x01\x00\x01\x00\x01\x85\x76\x61\x6c\x75\x65\x06\x04\x01\xff\x01\x01\x00\x01\x07\x6d\x79\x67\x72\x6f\x75\x70\x01\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x4a\x79\x89\x8f\x9f\x01\x00\x00\x01\x02\x09\x63\x6f\x6e\x73\x75\x6d\x65\x72\x41\x4a\x79\x89\x8f\x9f\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x09\x63\x6f\x6e\x73\x75\x6d\x65\x72\x42\x54\x79\x89\x8f\x9f\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x09\x00\xf6\xea\x7b\x6c\xb8\xb8\xd8\xb4";

fn restore_shared_nack(line: &str) {
    // The double free is silent without a sanitizer.
    let r = both_asan(line, "restore-nack", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        let restore = c
            .call(&[b"RESTORE", b"mystream", b"0", SHARED_NACK])
            .map_err(io)?
            .text();
        // Deleting consumerB frees the entry consumerA's list still holds.
        let mut then = Vec::new();
        for cmd in [
            vec!["XGROUP", "DELCONSUMER", "mystream", "mygroup", "consumerB"],
            vec![
                "XPENDING",
                "mystream",
                "mygroup",
                "-",
                "+",
                "10",
                "consumerA",
            ],
            vec!["DEL", "mystream"],
        ] {
            let r = c
                .cmd(&cmd)
                .map(|r| r.text())
                .unwrap_or_else(|e| e.to_string());
            then.push(format!(
                "{}: {}",
                cmd[..2].join(" "),
                r.chars().take(40).collect::<String>()
            ));
        }
        Ok(format!("RESTORE: {restore}; {}", then.join("; ")))
    });
    check(
        line,
        "CVE-2026-66373",
        r,
        |a| a.starts_with("RESTORE: (error) ERR Bad data format"),
        Shows::Sanitizer(&["heap-use-after-free"]),
    );
}

#[test]
fn cve_2026_66373_restore_stream_shared_nack_7_0() {
    restore_shared_nack("7.0");
}

#[test]
fn cve_2026_66373_restore_stream_shared_nack_8_0() {
    restore_shared_nack("8.0");
}

/// Two of Debian's zipmap payloads (type 9, RDB 9) whose 5-byte length
/// encodings overrun the zipmap.
fn restore_zipmap_lengths(line: &str) {
    const SMALL_FIELD: &[u8] = b"\x09\x11\x01\xfe\x04\x00\x00\x00\x01\x00\xff\x00\x04\x00\x76\x61\x6c\x31\xff\x09\x00\xf9\xd5\xa4\xf7\x7d\x00\x3f\x1b";
    const SMALL_VALUE: &[u8] = b"\x09\x0e\x01\x01\x6b\xfe\x04\x00\x00\x00\x00\x76\x61\x6c\x31\xff\x09\x00\xd0\xf9\xe4\x1d\xe4\xfb\x11\x4c";
    let r = both(line, "restore-zipmap", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        let mut answers = Vec::new();
        for (key, payload) in [("k1", SMALL_FIELD), ("k2", SMALL_VALUE)] {
            let a = c
                .call(&[b"RESTORE", key.as_bytes(), b"0", payload])
                .map_err(io)?;
            let fields = c
                .cmd(&["HGETALL", key])
                .map(|r| r.text())
                .unwrap_or_else(|e| e.to_string());
            answers.push(format!("{}, HGETALL {fields}", a.text()));
        }
        Ok(answers.join("; "))
    });
    check(
        line,
        "CVE-2026-25243",
        r,
        |a| a.matches("(error) ERR Bad data format").count() == 2,
        Shows::Answer("both payloads accepted", |a| {
            a.matches("OK, HGETALL").count() == 2
        }),
    );
}

#[test]
fn cve_2026_25243_restore_zipmap_lengths_7_0() {
    restore_zipmap_lengths("7.0");
}

#[test]
fn cve_2026_25243_restore_zipmap_lengths_8_0() {
    restore_zipmap_lengths("8.0");
}

// ---------------------------------------------------------------------------
// redis-check-aof

#[test]
fn cve_2025_27151_check_aof_long_path_7_0() {
    let (up, rel) = builds("7.0");
    let dir = scratch("cve-7.0-check-aof");
    let long = format!("{}/{}", dir.display(), "a".repeat(5000));
    let run = |bin: &Path| -> Outcome {
        let out = Command::new(bin.join("redis-check-aof"))
            .arg(&long)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let first = text.lines().next().unwrap_or("").to_string();
        use std::os::unix::process::ExitStatusExt;
        Outcome {
            down: out.status.signal().map(|s| Down::Ended {
                status: out.status.to_string(),
                signal: Some(s),
                sanitizer: None,
                log: Some(first.clone()),
            }),
            answer: Ok(format!("exit {:?}: {first}", out.status.code())),
        }
    };
    let (u, r) = (run(&up), run(&rel));
    check(
        "7.0",
        "CVE-2025-27151",
        (u, r),
        |a| a.starts_with("exit Some(1)") && a.contains("too long"),
        Shows::Signal(SIGABRT),
    );
}

// ---------------------------------------------------------------------------
// The cluster bus

/// A cluster bus message header (`clusterMsg` up to its data, 2256 bytes).
fn bus_header(
    kind: u16,
    count: u16,
    sender: &str,
    port: u16,
    extensions: u16,
    mflags0: u8,
) -> Vec<u8> {
    let mut p = b"RCmb".to_vec();
    p.extend_from_slice(&0u32.to_be_bytes()); // totlen, set below
    p.extend_from_slice(&1u16.to_be_bytes()); // ver
    p.extend_from_slice(&port.to_be_bytes());
    p.extend_from_slice(&kind.to_be_bytes());
    p.extend_from_slice(&count.to_be_bytes());
    p.extend_from_slice(&1u64.to_be_bytes()); // currentEpoch
    p.extend_from_slice(&1u64.to_be_bytes()); // configEpoch
    p.extend_from_slice(&0u64.to_be_bytes()); // offset
    let mut name = sender.as_bytes().to_vec();
    name.resize(40, 0);
    p.extend_from_slice(&name);
    p.extend(std::iter::repeat_n(0u8, 16384 / 8)); // myslots
    p.extend(std::iter::repeat_n(0u8, 40)); // slaveof
    p.extend(std::iter::repeat_n(0u8, 46)); // myip
    p.extend_from_slice(&extensions.to_be_bytes());
    p.extend(std::iter::repeat_n(0u8, 30)); // notused1
    p.extend_from_slice(&0u16.to_be_bytes()); // pport
    p.extend_from_slice(&(port + 10_000).to_be_bytes()); // cport
    p.extend_from_slice(&1u16.to_be_bytes()); // flags: master
    p.push(0); // state
    p.extend_from_slice(&[mflags0, 0, 0]);
    assert_eq!(p.len(), 2256);
    p
}

fn with_totlen(mut p: Vec<u8>) -> Vec<u8> {
    let n = (p.len() as u32).to_be_bytes();
    p[4..8].copy_from_slice(&n);
    p
}

fn send_bus(port: u16, packet: &[u8]) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port + 10_000)).map_err(io)?;
    s.write_all(packet).map_err(io)?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(())
}

fn cluster_bus_gossip_past_the_packet(line: &str) {
    // The read past the packet crashes a normal build only when the memory
    // there is unmapped; the sanitizer sees it every time.
    let (up, rel) = builds_asan(line);
    let dir = scratch(&format!("cve-{line}-bus-gossip"));
    let run = |bin: &Path, sub: &str| -> Outcome {
        let port = free_cluster_port().unwrap();
        let mut run = start(bin, &dir.join(sub), port, &["--cluster-enabled", "yes"]);
        // A MEET that claims 65535 gossip sections (6.8 MB) and as many
        // ping extensions (CLUSTERMSG_FLAG0_EXT_DATA) but carries none.
        let packet = with_totlen(bus_header(
            2,
            u16::MAX,
            "abcdef1234567890abcdef1234567890abcdef12",
            port,
            u16::MAX,
            4,
        ));
        let answer = send_bus(port, &packet).and_then(|()| {
            let mut c = Conn::open(port).map_err(io)?;
            let nodes = c.cmd(&["CLUSTER", "NODES"]).map_err(io)?.text();
            Ok(format!("{} node(s) known", nodes.lines().count()))
        });
        Outcome {
            down: run.down(),
            answer,
        }
    };
    let (u, r) = (run(&up, "upstream"), run(&rel, "release"));
    check(
        line,
        "CVE-2026-21863",
        (u, r),
        |a| a == "1 node(s) known",
        // The read past the packet: past the mapping (unknown-crash) or
        // past the buffer (heap-buffer-overflow).
        Shows::Sanitizer(&["unknown-crash", "heap-buffer-overflow"]),
    );
}

#[test]
fn cve_2026_21863_cluster_bus_gossip_past_the_packet_7_0() {
    cluster_bus_gossip_past_the_packet("7.0");
}

#[test]
fn cve_2026_21863_cluster_bus_gossip_past_the_packet_8_0() {
    cluster_bus_gossip_past_the_packet("8.0");
}

/// A PING from a known node whose hostname extension has no NUL: 32 bytes
/// of `A` that fill the extension to its 8-byte padding exactly.
fn cluster_hostname_without_nul(line: &str) {
    let (up, rel) = builds(line);
    let dir = scratch(&format!("cve-{line}-bus-hostname"));
    let run = |bin: &Path, sub: &str| -> Outcome {
        let (pa, pb) = (free_cluster_port().unwrap(), free_cluster_port().unwrap());
        let mut a = start(
            bin,
            &dir.join(sub).join("a"),
            pa,
            &["--cluster-enabled", "yes"],
        );
        let mut b = start(
            bin,
            &dir.join(sub).join("b"),
            pb,
            &["--cluster-enabled", "yes"],
        );
        let answer = (|| -> Result<String, String> {
            let mut ca = Conn::open(pa).map_err(io)?;
            ca.cmd(&["CLUSTER", "MEET", "127.0.0.1", &pb.to_string()])
                .map_err(io)?;
            let b_id = Conn::open(pb)
                .and_then(|mut c| c.cmd(&["CLUSTER", "MYID"]))
                .map_err(io)?
                .text();
            // Both sides past the handshake.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let nodes = ca.cmd(&["CLUSTER", "NODES"]).map_err(io)?.text();
                let b_line = nodes
                    .lines()
                    .find(|l| l.starts_with(&b_id))
                    .map(str::to_string);
                if b_line.is_some_and(|l| !l.contains("handshake") && l.contains("connected")) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("no cluster of two: {nodes}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // B's own PINGs would clear the hostname again: stop it.
            Command::new("kill")
                .args(["-STOP", &b.server.child.id().to_string()])
                .status()
                .map_err(io)?;
            let mut ext = 40u32.to_be_bytes().to_vec(); // length, padded
            ext.extend_from_slice(&0u16.to_be_bytes()); // type: hostname
            ext.extend_from_slice(&0u16.to_be_bytes()); // unused
            ext.extend_from_slice(&[b'A'; 32]);
            let mut packet = bus_header(0, 0, &b_id, pb, 1, 4);
            packet.extend_from_slice(&ext);
            send_bus(pa, &with_totlen(packet))?;
            let nodes = ca.cmd(&["CLUSTER", "NODES"]).map_err(io)?.text();
            let b_line = nodes.lines().find(|l| l.starts_with(&b_id)).unwrap_or("");
            // `<id> <ip:port@cport[,hostname]> …`
            let addr = b_line.split(' ').nth(1).unwrap_or("");
            Ok(match addr.split_once(',') {
                Some((_, host)) => format!("hostname of B taken as {host:?}"),
                None => "hostname of B unchanged".to_string(),
            })
        })();
        let _ = Command::new("kill")
            .args(["-CONT", &b.server.child.id().to_string()])
            .status();
        let _ = b.down();
        Outcome {
            down: a.down(),
            answer,
        }
    };
    let (u, r) = (run(&up, "upstream"), run(&rel, "release"));
    check(
        line,
        "CVE-2026-92925",
        (u, r),
        |a| a == "hostname of B unchanged",
        Shows::Answer("B's hostname read past the packet", |a| {
            a.starts_with("hostname of B taken as")
        }),
    );
}

#[test]
fn cve_2026_92925_cluster_hostname_without_nul_7_0() {
    cluster_hostname_without_nul("7.0");
}

#[test]
fn cve_2026_92925_cluster_hostname_without_nul_8_0() {
    cluster_hostname_without_nul("8.0");
}

// ---------------------------------------------------------------------------
// Replication

/// A full sync reaches a replica while a function it runs is past its time
/// limit: loading the master's data frees the function library the
/// function runs in (7.0 and 8.0 alike), which must wait for it.
fn fullsync_during_a_busy_script(line: &str) {
    let (up, rel) = builds(line);
    let dir = scratch(&format!("cve-{line}-fullsync"));
    let run = |bin: &Path, sub: &str| -> Outcome {
        let (pm, pr) = (free_port().unwrap(), free_port().unwrap());
        let _master = start(
            bin,
            &dir.join(sub).join("master"),
            pm,
            &[
                "--repl-diskless-sync",
                "yes",
                "--repl-diskless-sync-delay",
                "0",
                "--client-output-buffer-limit",
                "replica 1k 1k 0",
            ],
        );
        let mut replica = start(
            bin,
            &dir.join(sub).join("replica"),
            pr,
            &[
                "--replicaof",
                "127.0.0.1",
                &pm.to_string(),
                "--busy-reply-threshold",
                "1",
            ],
        );
        let answer = (|| -> Result<String, String> {
            let mut m = Conn::open(pm).map_err(io)?;
            let info = |c: &mut Conn, f: &str| -> Result<String, String> {
                let i = c.cmd(&["INFO"]).map_err(io)?.text();
                Ok(xtask::server::info_field(&i, f).unwrap_or("").to_string())
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut r = Conn::open(pr).map_err(io)?;
            while info(&mut r, "master_link_status")? != "up" {
                if Instant::now() > deadline {
                    return Err("the replica never synced".into());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            // A function that never ends (loaded on the master, replicated).
            m.cmd(&[
                "FUNCTION",
                "LOAD",
                "#!lua name=blocklib\nredis.register_function{function_name='blockfunc', \
                 callback=function() while true do end end, flags={'no-writes'}}",
            ])
            .map_err(io)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while !r
                .cmd(&["FUNCTION", "LIST"])
                .map_err(io)?
                .text()
                .contains("blocklib")
            {
                if Instant::now() > deadline {
                    return Err("the function never reached the replica".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let before: u64 = info(&mut m, "sync_full")?.parse().unwrap_or(0);
            let mut busy = Conn::open(pr).map_err(io)?;
            busy.s
                .write_all(&encode(&[b"FCALL_RO", b"blockfunc", b"0"]))
                .map_err(io)?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let p = Conn::open(pr)
                    .and_then(|mut c| c.cmd(&["PING"]))
                    .map_err(io)?;
                if matches!(&p, Reply::Error(e) if e.starts_with("BUSY")) {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("the script never made the replica busy: {p:?}"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Overflow the replica's 1 kB output buffer on the master: it
            // drops the link, and the replica syncs in full again.
            let value = vec![b'x'; 1_000_000];
            for i in 0..5 {
                m.call(&[b"SET", format!("bigkey:{i}").as_bytes(), &value])
                    .map_err(io)?;
            }
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut after = before;
            while after < before + 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                after = info(&mut m, "sync_full")?.parse().unwrap_or(0);
            }
            if after == before {
                return Err("no full sync happened while the function ran".into());
            }
            std::thread::sleep(Duration::from_secs(1));
            let ping = Conn::open(pr)
                .and_then(|mut c| c.cmd(&["PING"]))
                .map(|r| r.text())
                .unwrap_or_else(|e| e.to_string());
            let kill = Conn::open(pr)
                .and_then(|mut c| c.cmd(&["FUNCTION", "KILL"]))
                .map(|r| r.text())
                .unwrap_or_else(|e| e.to_string());
            Ok(format!(
                "{} full sync(s) during the function; replica answered {ping}; FUNCTION KILL: {kill}",
                after - before
            ))
        })();
        Outcome {
            down: replica.down(),
            answer,
        }
    };
    let (u, r) = (run(&up, "upstream"), run(&rel, "release"));
    check(
        line,
        "CVE-2026-23631",
        (u, r),
        |a| a.contains("replica answered (error) BUSY") && a.ends_with("FUNCTION KILL: OK"),
        Shows::HangAfterScenario,
    );
}

#[test]
fn cve_2026_23631_fullsync_during_a_busy_script_7_0() {
    fullsync_during_a_busy_script("7.0");
}

#[test]
fn cve_2026_23631_fullsync_during_a_busy_script_8_0() {
    fullsync_during_a_busy_script("8.0");
}

// ---------------------------------------------------------------------------
// Redis 8.0 only

#[test]
fn cve_2026_23479_evicting_a_client_while_it_unblocks_8_0() {
    // The evicted client is used after it is freed: silent without a
    // sanitizer.
    let r = both_asan("8.0", "evict-unblocked", &[], |run| {
        let mut c = Conn::open(run.port).map_err(io)?;
        c.cmd(&["CLIENT", "NO-EVICT", "on"]).map_err(io)?;
        c.cmd(&["CONFIG", "SET", "maxmemory-clients", "0"])
            .map_err(io)?;
        // A client blocked on a stream, its memory over 200 kB.
        let mut blocked = Conn::open(run.port).map_err(io)?;
        let stream = format!("stream_{}", "x".repeat(200_000));
        blocked
            .s
            .write_all(&encode(&[
                b"XREAD",
                b"BLOCK",
                b"0",
                b"STREAMS",
                b"mystream",
                stream.as_bytes(),
                b"$",
                b"$",
            ]))
            .map_err(io)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let i = c.cmd(&["INFO", "clients"]).map_err(io)?.text();
            if xtask::server::info_field(&i, "blocked_clients") == Some("1") {
                break;
            }
            if Instant::now() > deadline {
                return Err("the client never blocked".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Lower the limit and unblock it in one transaction: it is evicted
        // while it re-executes its command.
        for cmd in [
            vec!["MULTI"],
            vec!["CONFIG", "SET", "maxmemory-clients", "100000"],
            vec!["XADD", "mystream", "*", "field", "val"],
        ] {
            c.cmd(&cmd).map_err(io)?;
        }
        let exec = c.cmd(&["EXEC"]).map(|r| r.text()).map_err(io)?;
        let ping = c
            .cmd(&["PING"])
            .map(|r| r.text())
            .unwrap_or_else(|e| e.to_string());
        Ok(format!(
            "EXEC: {}; PING: {ping}",
            exec.split(',').next().unwrap_or("")
        ))
    });
    check(
        "8.0",
        "CVE-2026-23479",
        r,
        |a| a.ends_with("PING: PONG"),
        Shows::Sanitizer(&["heap-use-after-free"]),
    );
}

/// An RDB whose SLOT_INFO record names slot 10,000,000, loaded by a node in
/// cluster mode (not a CVE; fixed upstream in 8.2.9, our
/// 0005-rdb-slot-info-slot-id-range.patch).
#[test]
fn rdb_slot_info_slot_id_past_the_last_slot_8_0() {
    let (up, rel) = builds("8.0");
    let dir = scratch("cve-8.0-slot-info");
    // A real RDB with SLOT_INFO records, from the release itself.
    let port = free_cluster_port().unwrap();
    let saved = {
        let mut run = start(
            &rel,
            &dir.join("make"),
            port,
            &["--cluster-enabled", "yes", "--rdbchecksum", "no"],
        );
        let mut c = Conn::open(port).unwrap();
        c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !c
            .cmd(&["CLUSTER", "INFO"])
            .unwrap()
            .text()
            .contains("cluster_state:ok")
        {
            assert!(
                Instant::now() < deadline,
                "the one-node cluster never got ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // "a" is in slot 15495: length-encoded in 14 bits as 7c 87.
        assert_eq!(
            c.cmd(&["SET", "a", "1"]).unwrap(),
            Reply::Status("OK".into())
        );
        assert_eq!(c.cmd(&["SAVE"]).unwrap(), Reply::Status("OK".into()));
        assert!(run.down().is_none());
        std::fs::read(dir.join("make/dump.rdb")).unwrap()
    };
    let at = saved
        .windows(3)
        .position(|w| w == [0xf4, 0x7c, 0x87])
        .expect("the RDB holds SLOT_INFO for slot 15495");
    let mut bad = saved[..at + 1].to_vec();
    bad.push(0x80); // a 32-bit length
    bad.extend_from_slice(&10_000_000u32.to_be_bytes());
    bad.extend_from_slice(&saved[at + 3..]);
    let load = |bin: &Path, sub: &str| -> Outcome {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dump.rdb"), &bad).unwrap();
        let nodes = std::fs::read(dir.join("make/nodes.conf")).unwrap();
        std::fs::write(d.join("nodes.conf"), nodes).unwrap();
        let port = free_cluster_port().unwrap();
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--cluster-enabled",
            "yes",
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut s = Server::spawn(&bin.join("redis-server"), &d, port, &args).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        use std::os::unix::process::ExitStatusExt;
        let log = s.log_tail();
        let said = log
            .lines()
            .find(|l| l.contains("Invalid slot id") || l.contains("crashed by signal"))
            .unwrap_or("")
            .trim()
            .to_string();
        match status {
            Some(st) if st.signal().is_some() => Outcome {
                down: Some(Down::Ended {
                    status: st.to_string(),
                    signal: st.signal(),
                    sanitizer: None,
                    log: (!said.is_empty()).then(|| said.clone()),
                }),
                answer: Ok(said),
            },
            Some(st) => Outcome {
                down: None,
                answer: Ok(format!("exit {:?}: {said}", st.code())),
            },
            None => Outcome {
                down: Some(Down::Hung("still loading after 20 s".into())),
                answer: Ok(said),
            },
        }
    };
    let (u, r) = (load(&up, "upstream"), load(&rel, "release"));
    check(
        "8.0",
        "SLOT_INFO slot id (8.2.9)",
        (u, r),
        // The loader reports the file and the server exits.
        |a| a.starts_with("exit ") && a.contains("Invalid slot id 10000000 in SLOT_INFO"),
        Shows::Signal(SIGSEGV),
    );
}

// ---------------------------------------------------------------------------
// The judgement itself, on made-up outcomes

fn made_up(answer: Result<&str, &str>, down: Option<Down>) -> Outcome {
    Outcome {
        answer: answer.map(str::to_string).map_err(str::to_string),
        down,
    }
}

fn killed(signal: i32) -> Option<Down> {
    Some(Down::Ended {
        status: format!("signal: {signal}"),
        signal: Some(signal),
        sanitizer: None,
        log: None,
    })
}

#[test]
fn only_the_vulnerable_behaviour_itself_proves_upstream_vulnerable() {
    let fixed = made_up(Ok("[]"), None);
    let want = |a: &str| a == "[]";
    // A crash by the named signal proves it, also when it cut the scenario short.
    let crashed = made_up(Err("unexpected end of file"), killed(SIGSEGV));
    assert_eq!(
        verdict(&crashed, &fixed, want, &Shows::Signal(SIGSEGV)),
        Ok(())
    );
    // A harness failure proves nothing: upstream at a closed port.
    let refused = made_up(Err("Connection refused (os error 111)"), None);
    let e = verdict(&refused, &fixed, want, &Shows::Signal(SIGSEGV)).unwrap_err();
    assert!(
        e.starts_with("the harness failed on upstream (Connection refused"),
        "{e}"
    );
    // Nor does another signal, another answer, or a hang where a crash is due.
    let aborted = made_up(Ok("x"), killed(SIGABRT));
    assert!(verdict(&aborted, &fixed, want, &Shows::Signal(SIGSEGV)).is_err());
    let other = made_up(Ok("[x]"), None);
    let e = verdict(&other, &fixed, want, &Shows::Signal(SIGSEGV)).unwrap_err();
    assert!(
        e.starts_with("upstream did not show a crash by signal 11"),
        "{e}"
    );
    let hung = made_up(Ok("x"), Some(Down::Hung("timed out".into())));
    assert!(verdict(&hung, &fixed, want, &Shows::Signal(SIGSEGV)).is_err());
    assert_eq!(verdict(&hung, &fixed, want, &Shows::Hang), Ok(()));
    // Where the hang must follow the whole scenario, a scenario cut short
    // by a harness failure proves nothing.
    assert_eq!(
        verdict(&hung, &fixed, want, &Shows::HangAfterScenario),
        Ok(())
    );
    let hung_early = made_up(
        Err("the replica never synced"),
        Some(Down::Hung("timed out".into())),
    );
    assert!(verdict(&hung_early, &fixed, want, &Shows::HangAfterScenario).is_err());
    // A sanitizer report must be of the named kind.
    let asan = |kind: &str| {
        made_up(
            Err("unexpected end of file"),
            Some(Down::Ended {
                status: "exit status: 1".into(),
                signal: None,
                sanitizer: Some(format!("AddressSanitizer: {kind} on address 0x1")),
                log: None,
            }),
        )
    };
    let uaf = Shows::Sanitizer(&["heap-use-after-free"]);
    assert_eq!(
        verdict(&asan("heap-use-after-free"), &fixed, want, &uaf),
        Ok(())
    );
    assert!(verdict(&asan("stack-overflow"), &fixed, want, &uaf).is_err());
    // An answer proves it only when it is the forbidden one.
    let injected = Shows::Answer("an injected reply", |a| a.contains("+INJECTED"));
    assert_eq!(
        verdict(
            &made_up(Ok("-ERR X\r\n+INJECTED"), None),
            &fixed,
            want,
            &injected
        ),
        Ok(())
    );
    assert!(verdict(&made_up(Err("timeout"), None), &fixed, want, &injected).is_err());
}

#[test]
fn the_release_side_is_strict() {
    let crashed = made_up(Err("unexpected end of file"), killed(SIGSEGV));
    let want = |a: &str| a == "[]";
    let shows = Shows::Signal(SIGSEGV);
    let e = verdict(
        &crashed,
        &made_up(Err("no cluster formed"), None),
        want,
        &shows,
    );
    assert_eq!(
        e,
        Err("the harness failed on the release: no cluster formed".into())
    );
    let down = made_up(Ok("[]"), Some(Down::Hung("timed out".into())));
    assert!(verdict(&crashed, &down, want, &shows)
        .unwrap_err()
        .starts_with("the release went down"));
    assert!(verdict(&crashed, &made_up(Ok("[1]"), None), want, &shows).is_err());
}
