//! `redis-cli --cluster diagnose` (the cluster-diagnose patch of each
//! line) against the three cluster failures `--cluster check` misses, on a
//! real network: a 3+3 cluster of the packaged binaries, each node in a
//! network namespace of its own on a bridge in another namespace (veth
//! pairs, addresses from 198.18.0.0/24, the range reserved for network
//! tests, assigned only inside those namespaces), links cut with a
//! `blackhole` route in a node's namespace (iproute2: every packet from it
//! to the other node is dropped, so no TCP connection between the two
//! works). Everything is torn down at the end; every wait is bounded.

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::{release, scratch, skip};
use serde_json::Value;

/// cluster-node-timeout of every test cluster, in milliseconds.
const TIMEOUT_MS: u64 = 2000;

/// Whether namespaces can be made here: asked once per process (the tests
/// run in parallel and would race on the probe's name).
fn unavailable() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("network namespaces need root".into());
    }
    let probe = format!("prd-probe-{}", std::process::id());
    let ok = Command::new("ip").args(["netns", "add", &probe]).status();
    let _ = Command::new("ip").args(["netns", "del", &probe]).status();
    match ok {
        Ok(s) if s.success() => None,
        _ => Some("`ip netns add` fails here (iproute2, root)".into()),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces `<tag>-hub` (the bridge), `<tag>-c` (the client, .100) and
/// `<tag>-1` … `<tag>-N` (the nodes, 198.18.0.K).
struct Net {
    tag: String,
    names: Vec<String>,
}

impl Net {
    fn new(tag: &str, nodes: usize) -> Net {
        let tag = format!("prd{}-{tag}", std::process::id());
        let mut net = Net {
            tag: tag.clone(),
            names: Vec::new(),
        };
        let hub = format!("{tag}-hub");
        ip(&["netns", "add", &hub]);
        net.names.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &hub, "link", "set", "br0", "up"]);
        for k in (1..=nodes).chain([100]) {
            let ns = net.ns(k);
            ip(&["netns", "add", &ns]);
            net.names.push(ns.clone());
            let port = format!("v{k}");
            ip(&[
                "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &hub,
            ]);
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"]);
            ip(&["-n", &hub, "link", "set", &port, "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", addr(k)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        net
    }

    fn ns(&self, k: usize) -> String {
        if k == 100 {
            format!("{}-c", self.tag)
        } else {
            format!("{}-{k}", self.tag)
        }
    }

    /// Nothing from node `a` reaches node `b` (so no connection between
    /// them works, in either direction).
    fn cut(&self, a: usize, b: usize) {
        ip(&[
            "-n",
            &self.ns(a),
            "route",
            "add",
            "blackhole",
            &format!("{}/32", addr(b)),
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in self.names.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn addr(k: usize) -> String {
    format!("198.18.0.{k}")
}

struct Cluster {
    line: &'static str,
    /// Nodes 1..=n: the masters first, as `--cluster create` takes them.
    n: usize,
    bin: PathBuf,
    dir: PathBuf,
    servers: Vec<(usize, Child)>,
    // Dropped after the servers are killed.
    net: Net,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, c) in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A node of the diagnosis: its number (from its address), id, role, master.
#[derive(Debug, Clone)]
struct Node {
    k: usize,
    id: String,
    master: bool,
    master_id: Option<String>,
}

impl Cluster {
    /// `masters` masters with a replica each (`--cluster create`).
    fn start(line: &'static str, tag: &str, masters: usize) -> Cluster {
        let n = 2 * masters;
        let r = release(line);
        let dir = scratch(&format!("diagnose-{line}-{tag}"));
        let net = Net::new(&format!("{}{tag}", line.replace('.', "")), n);
        let mut c = Cluster {
            line,
            n,
            bin: r.bin.clone(),
            dir,
            servers: Vec::new(),
            net,
        };
        for k in 1..=n {
            let d = c.dir.join(format!("n{k}"));
            std::fs::create_dir_all(&d).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &c.net.ns(k)])
                .arg(c.bin.join("redis-server"))
                .args([
                    "--bind",
                    &addr(k),
                    "--port",
                    "6379",
                    "--protected-mode",
                    "no",
                ])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout"])
                .arg(TIMEOUT_MS.to_string())
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(&d)
                .arg("--logfile")
                .arg(d.join("log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting redis-server");
            c.servers.push((k, child));
        }
        for k in 1..=n {
            c.wait_until(&format!("node {k} answers"), 10, || {
                c.redis(k, &["ping"]).contains("PONG")
            });
        }
        let hosts: Vec<String> = (1..=n).map(|k| format!("{}:6379", addr(k))).collect();
        let mut args = vec!["--cluster", "create"];
        args.extend(hosts.iter().map(String::as_str));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = c.cli(&args);
        assert!(out.status.success(), "create: {}", text(&out));
        let known = format!("cluster_known_nodes:{n}\r\n");
        c.wait_until(
            "every node says cluster_state:ok and knows them all",
            30,
            || {
                (1..=n).all(|k| {
                    let info = c.redis(k, &["cluster", "info"]);
                    info.contains("cluster_state:ok") && info.contains(&known)
                })
            },
        );
        // A replica that never synced cannot fail over (its data is too old):
        // every replica has its master link up before a scenario starts.
        c.wait_until("every replica has synced", 30, || {
            (1..=n).all(|k| {
                let info = c.redis(k, &["info", "replication"]);
                info.contains("role:master") || info.contains("master_link_status:up")
            })
        });
        c.wait_until("diagnose finds a healthy cluster", 30, || {
            c.diagnose().0 == 0
        });
        c
    }

    /// redis-cli in the client namespace.
    fn cli(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.net.ns(100)])
            .arg(self.bin.join("redis-cli"))
            .args(args)
            .output()
            .expect("running redis-cli")
    }

    /// A command to node k: its reply as text.
    fn redis(&self, k: usize, args: &[&str]) -> String {
        let a = addr(k);
        let mut all: Vec<&str> = vec!["-h", &a, "-p", "6379"];
        all.extend_from_slice(args);
        text(&self.cli(&all))
    }

    /// `--cluster diagnose --cluster-json` from the client, entering at the
    /// first node that answers: exit code, record.
    fn diagnose(&self) -> (i32, Value) {
        let mut last = None;
        for k in 1..=self.n {
            let out = self.cli(&[
                "--cluster",
                "diagnose",
                &format!("{}:6379", addr(k)),
                "--cluster-json",
            ]);
            let v: Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("diagnose printed no JSON ({e}): {}", text(&out)));
            let code = out.status.code().unwrap_or(-1);
            let errors = jsonschema::validate(schema(), &v);
            assert!(
                errors.is_empty(),
                "docs/cluster-diagnose.schema.json: {errors:#?}\n{v:#}"
            );
            assert_eq!(v["exit"], code, "{v:#}");
            if code != 2 {
                return (code, v);
            }
            last = Some((code, v));
        }
        last.unwrap()
    }

    fn diagnose_text(&self, entry: usize) -> (i32, String) {
        let out = self.cli(&["--cluster", "diagnose", &format!("{}:6379", addr(entry))]);
        (out.status.code().unwrap_or(-1), text(&out))
    }

    fn check_text(&self, entry: usize) -> (i32, String) {
        let out = self.cli(&["--cluster", "check", &format!("{}:6379", addr(entry))]);
        (out.status.code().unwrap_or(-1), text(&out))
    }

    fn nodes(&self) -> Vec<Node> {
        let (_, v) = self.diagnose();
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| Node {
                k: n["addr"]
                    .as_str()
                    .unwrap()
                    .trim_end_matches(":6379")
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap(),
                id: n["id"].as_str().unwrap().to_string(),
                master: n["role"] == "master",
                master_id: n["master"].as_str().map(String::from),
            })
            .collect()
    }

    /// The masters, each with its replica.
    fn pairs(&self) -> Vec<(Node, Node)> {
        let nodes = self.nodes();
        let mut out = Vec::new();
        for m in nodes.iter().filter(|n| n.master) {
            let r = nodes
                .iter()
                .find(|n| n.master_id.as_deref() == Some(&m.id))
                .unwrap_or_else(|| panic!("no replica of {m:?}: {nodes:?}"));
            out.push((m.clone(), r.clone()));
        }
        out.sort_by_key(|(m, _)| m.k);
        assert_eq!(out.len(), self.n / 2, "{nodes:?}");
        out
    }

    fn kill(&mut self, k: usize) {
        if let Some((_, c)) = self.servers.iter_mut().find(|(n, _)| *n == k) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self, k: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("n{k}/log"))).unwrap_or_default()
    }

    fn wait_until(&self, what: &str, seconds: u64, mut f: impl FnMut() -> bool) -> Duration {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(seconds) {
            if f() {
                return start.elapsed();
            }
            sleep(Duration::from_millis(250));
        }
        panic!("{} {}: not within {seconds}s", self.line, what);
    }

    /// Poll diagnose until a finding of `kind` appears, within `limit`.
    fn finding_within(&self, kind: &str, limit: Duration) -> (Value, Duration) {
        let start = Instant::now();
        loop {
            let (code, v) = self.diagnose();
            if let Some(f) = v["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["kind"] == kind)
            {
                assert_eq!(code, 1, "{v:#}");
                return (f.clone(), start.elapsed());
            }
            assert!(
                start.elapsed() < limit,
                "{}: no {kind} finding within {limit:?}: {v:#}",
                self.line
            );
            sleep(Duration::from_millis(250));
        }
    }
}

/// docs/cluster-diagnose.schema.json, every record is checked against.
fn schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = common::repo_root().join("docs/cluster-diagnose.schema.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    })
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Keep the outputs the README quotes: target/e2e/diagnose-<line>-<tag>/.
fn keep(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn skip_unless_possible(test: &str) -> bool {
    if let Some(why) = unavailable() {
        skip(test, &why);
        return false;
    }
    true
}

/// Scenario 1: CLUSTER DELSLOTS on one node leaves the others with the old
/// owner; ADDSLOTS is refused as busy; check does not name the slots.
fn stale_slot_owner(line: &'static str) {
    let c = Cluster::start(line, "s1", 3);
    let (m1, _) = c.pairs()[0].clone();
    assert!(c
        .redis(m1.k, &["cluster", "delslotsrange", "0", "99"])
        .contains("OK"));
    let other = c.pairs()[1].0.k;
    let busy = c.redis(other, &["cluster", "addslotsrange", "0", "99"]);
    assert!(busy.contains("is already busy"), "{busy}");
    let (_, check) = c.check_text(other);
    assert!(!check.contains("0-99"), "{check}");
    let (f, _) = c.finding_within("stale-slot-owner", Duration::from_millis(2 * TIMEOUT_MS));
    assert_eq!(f["slots"], serde_json::json!([[0, 99]]), "{f:#}");
    assert!(
        f["fix"].as_str().unwrap().contains("DELSLOTSRANGE 0 99"),
        "{f:#}"
    );
    let (code, human) = c.diagnose_text(other);
    assert_eq!(code, 1);
    keep(&c.dir, "check.txt", &check);
    keep(&c.dir, "diagnose.txt", &human);
}

/// Scenario 2: two masters cannot reach each other; nobody fails either,
/// cluster_state stays ok, check passes from every entry node.
fn partition_between_masters(line: &'static str) {
    let c = Cluster::start(line, "s2", 3);
    let pairs = c.pairs();
    let (a, b) = (pairs[0].0.k, pairs[1].0.k);
    c.net.cut(a, b);
    let (f, took) = c.finding_within(
        "partial-partition",
        Duration::from_millis(2 * TIMEOUT_MS + 1000),
    );
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("will never become FAIL"), "{f:#}");
    assert!(msg.contains("cluster_state is ok"), "{f:#}");
    // Still no FAIL, still ok, and check passes from every node.
    sleep(Duration::from_millis(2 * TIMEOUT_MS));
    for k in 1..=c.n {
        let info = c.redis(k, &["cluster", "info"]);
        assert!(info.contains("cluster_state:ok"), "node {k}: {info}");
    }
    let mut checks = String::new();
    for k in 1..=c.n {
        let (code, check) = c.check_text(k);
        assert_eq!(code, 0, "check from node {k} does not pass: {check}");
        checks.push_str(&check);
    }
    let (code, human) = c.diagnose_text(pairs[2].0.k);
    assert_eq!(code, 1, "{human}");
    assert!(human.contains("[FINDING partial-partition]"), "{human}");
    keep(&c.dir, "check.txt", &checks);
    keep(
        &c.dir,
        "diagnose.txt",
        &format!("found after {took:?}\n{human}"),
    );
}

/// Scenario 3: a surviving master cannot reach the replica of the master
/// that fails: predicted before the kill, the election observed blocked,
/// recovered by the TAKEOVER diagnose names.
fn blocked_election(line: &'static str) {
    let mut c = Cluster::start(line, "s3", 3);
    let pairs = c.pairs();
    let ((m1, r1), (m2, _), (m3, _)) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    c.net.cut(m2.k, r1.k);
    let (f, _) = c.finding_within(
        "election-blocked",
        Duration::from_millis(2 * TIMEOUT_MS + 1000),
    );
    assert_eq!(f["nodes"], serde_json::json!([m1.id, r1.id]), "{f:#}");
    assert!(
        f["message"].as_str().unwrap().contains("1 of the 2 votes"),
        "{f:#}"
    );
    let (_, prediction) = c.diagnose_text(m3.k);

    c.kill(m1.k);
    // The replica logs why it cannot fail over only node-timeout + 5 s after
    // the FAIL, between its elections; on 2 loaded cores, give it time.
    c.wait_until("the election is seen blocked", 90, || {
        c.log(r1.k)
            .contains("Waiting for votes, but majority still not reached")
            && c.redis(m3.k, &["cluster", "info"])
                .contains("cluster_state:fail")
    });
    let (f, _) = c.finding_within("failover-blocked", Duration::from_secs(5));
    let fix = f["fix"].as_str().unwrap();
    assert!(fix.contains("FORCE") && fix.contains("TAKEOVER"), "{f:#}");
    // The other masters' elections now need the dead master's vote: named
    // as down, not as a cut link.
    let (_, after) = c.diagnose();
    for f in after["findings"].as_array().unwrap() {
        if f["kind"] == "election-blocked" {
            assert!(
                f["message"].as_str().unwrap().contains("(it is down)"),
                "{f:#}"
            );
            assert!(
                f["fix"]
                    .as_str()
                    .unwrap()
                    .starts_with("bring back or replace"),
                "{f:#}"
            );
        }
    }
    let (_, blocked) = c.diagnose_text(m3.k);
    let (_, check) = c.check_text(m3.k);

    // The fix diagnose printed.
    assert!(c
        .redis(r1.k, &["cluster", "failover", "takeover"])
        .contains("OK"));
    c.wait_until("the replica serves the slots", 20, || {
        c.redis(r1.k, &["role"]).starts_with("master")
            && c.redis(m3.k, &["cluster", "info"])
                .contains("cluster_state:ok")
    });
    keep(
        &c.dir,
        "diagnose.txt",
        &format!("before the kill:\n{prediction}\nafter:\n{blocked}"),
    );
    keep(&c.dir, "check.txt", &check);
}

/// The control: the same kill without the cut fails over on its own.
fn control_failover(line: &'static str) {
    let mut c = Cluster::start(line, "s0", 3);
    let pairs = c.pairs();
    let ((m1, r1), (_, _), (m3, _)) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    c.kill(m1.k);
    c.wait_until("the replica wins the election", 30, || {
        c.log(r1.k).contains("Failover election won")
            && c.redis(m3.k, &["cluster", "info"])
                .contains("cluster_state:ok")
    });
}

/// The seed's remedy for scenario 3: with five masters the same cut leaves
/// the replica three of the four other masters' votes, and diagnose says so
/// before the kill that proves it.
fn five_masters_survive_the_cut(line: &'static str) {
    let mut c = Cluster::start(line, "s5", 5);
    let pairs = c.pairs();
    let ((m1, r1), (m2, _), (m3, _)) = (pairs[0].clone(), pairs[1].clone(), pairs[2].clone());
    c.net.cut(m2.k, r1.k);
    c.wait_until("the cut is seen", 2 * TIMEOUT_MS / 1000 + 2, || {
        let (_, v) = c.diagnose();
        v["matrix"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == m2.id.as_str() && e["to"] == r1.id.as_str() && e["view"] != "ok")
    });
    let (code, v) = c.diagnose();
    assert_eq!(code, 0, "{v:#}");
    let (_, human) = c.diagnose_text(m2.k);
    keep(&c.dir, "diagnose.txt", &human);
    c.kill(m1.k);
    c.wait_until("the replica wins the election", 30, || {
        c.log(r1.k).contains("Failover election won")
            && c.redis(m3.k, &["cluster", "info"])
                .contains("cluster_state:ok")
    });
}

#[test]
fn five_masters_survive_the_cut_7_0() {
    if skip_unless_possible("five_masters_survive_the_cut_7_0") {
        five_masters_survive_the_cut("7.0");
    }
}

macro_rules! line_tests {
    ($line:literal, $s1:ident, $s2:ident, $s3:ident, $s0:ident) => {
        #[test]
        fn $s1() {
            if skip_unless_possible(stringify!($s1)) {
                stale_slot_owner($line);
            }
        }
        #[test]
        fn $s2() {
            if skip_unless_possible(stringify!($s2)) {
                partition_between_masters($line);
            }
        }
        #[test]
        fn $s3() {
            if skip_unless_possible(stringify!($s3)) {
                blocked_election($line);
            }
        }
        #[test]
        fn $s0() {
            if skip_unless_possible(stringify!($s0)) {
                control_failover($line);
            }
        }
    };
}

line_tests!(
    "7.0",
    stale_slot_owner_7_0,
    partition_between_masters_7_0,
    blocked_election_7_0,
    control_failover_7_0
);
line_tests!(
    "8.0",
    stale_slot_owner_8_0,
    partition_between_masters_8_0,
    blocked_election_8_0,
    control_failover_8_0
);
