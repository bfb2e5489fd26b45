//! A real 3-master/3-replica cluster on loopback, made by `redis-cli
//! --cluster create` from the packaged binaries; the source of the real
//! nodes.conf files, and the stage for the rejoin and crash-safety proofs.

use std::{
    collections::HashSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use super::{corpus::NodesFile, probe};
use crate::server::{self, Server};

pub const NODES: usize = 6;
/// Short enough for quick failovers, long enough for a busy 2-core machine.
pub const NODE_TIMEOUT_MS: u64 = 2000;
const RPC_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Node {
    pub server: Server,
    pub id: String,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    /// The binaries the nodes run (the packaged release's `bin/`).
    pub bin: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Debug, Clone)]
pub struct NodeLine {
    pub id: String,
    pub flags: Vec<String>,
    pub master: String,
    pub slots: Vec<String>,
}

impl NodeLine {
    pub fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

pub fn node_args(port: u16, dir: &Path) -> Vec<String> {
    let mut args = probe::server_args(port, dir);
    // Server::spawn names the log file itself.
    if let Some(i) = args.iter().position(|a| a == "--logfile") {
        args.drain(i..i + 2);
    }
    args
}

impl Cluster {
    /// Start six nodes in `dir/n0..n5`, create the cluster, wait until every
    /// node reports `cluster_state:ok` and has written all six nodes to its
    /// nodes.conf.
    pub fn start(bin: &Path, dir: &Path) -> Result<Cluster> {
        let server_bin = bin.join("redis-server");
        let mut ports = HashSet::new();
        let mut nodes = Vec::new();
        while nodes.len() < NODES {
            let port = server::free_cluster_port()?;
            if !ports.insert(port) {
                continue;
            }
            let ndir = dir.join(format!("n{}", nodes.len()));
            let mut s = Server::spawn(&server_bin, &ndir, port, &node_args(port, &ndir))?;
            s.wait_ready(Duration::from_secs(20))?;
            let id = server::command(port, &["CLUSTER", "MYID"], RPC_TIMEOUT)?;
            nodes.push(Node { server: s, id });
        }
        let cluster = Cluster {
            nodes,
            bin: bin.to_path_buf(),
        };
        let addrs: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.server.port))
            .collect();
        let out = Command::new(bin.join("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .context("running redis-cli --cluster create")?;
        if !out.status.success() {
            bail!(
                "redis-cli --cluster create failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        cluster.wait_settled(Duration::from_secs(60))?;
        Ok(cluster)
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].server.port
    }

    pub fn conf(&self, i: usize) -> PathBuf {
        self.nodes[i].server.dir.join("nodes.conf")
    }

    /// Every node up, `cluster_state:ok`, all six known, every replica's link
    /// to its master up (a replica that never synced cannot fail over), and
    /// every nodes.conf holding six node lines and the vars line.
    pub fn wait_settled(&self, timeout: Duration) -> Result<Duration> {
        wait_for("the cluster to settle", timeout, || {
            for i in 0..self.nodes.len() {
                if info(self.port(i), "cluster_state")?.as_deref() != Some("ok")
                    || info(self.port(i), "cluster_known_nodes")?.as_deref() != Some("6")
                    || !replication_up(self.port(i))
                {
                    return Ok(false);
                }
                let text = fs::read_to_string(self.conf(i)).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                if lines.len() != NODES + 1
                    || !lines[NODES].starts_with("vars currentEpoch")
                    || lines.iter().any(|l| l.contains("handshake"))
                {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }

    /// The real nodes.conf of every node, as it is on disk now.
    pub fn files(&self) -> Result<Vec<NodesFile>> {
        (0..self.nodes.len())
            .map(|i| {
                let path = self.conf(i);
                Ok(NodesFile {
                    node: i,
                    bytes: fs::read(&path)
                        .with_context(|| format!("reading {}", path.display()))?,
                })
            })
            .collect()
    }

    /// Restart node `i` (after a kill) on its port and folder with `binary`;
    /// returns what the new run logged, once it is ready.
    pub fn restart(&mut self, i: usize, binary: &Path) -> Result<String> {
        let (port, dir) = (self.port(i), self.nodes[i].server.dir.clone());
        let log = dir.join("redis.log");
        let before = fs::metadata(&log).map(|m| m.len() as usize).unwrap_or(0);
        let s = Server::spawn(binary, &dir, port, &node_args(port, &dir))?;
        self.nodes[i].server = s;
        let start = Instant::now();
        loop {
            let text = fs::read(&log).unwrap_or_default();
            let new = String::from_utf8_lossy(text.get(before..).unwrap_or_default()).into_owned();
            if new.contains(probe::READY) {
                return Ok(new);
            }
            if let Some(status) = self.nodes[i].server.child.try_wait()? {
                bail!(
                    "node {i} exited ({status}) instead of starting from {}; it logged:\n{new}",
                    dir.join("nodes.conf").display()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                bail!("node {i} did not start within 30s; it logged:\n{new}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn kill(&mut self, i: usize) -> Result<()> {
        self.nodes[i].server.kill()?;
        Ok(())
    }

    pub fn stop(mut self) {
        for n in &mut self.nodes {
            let _ = n.server.kill();
        }
    }
}

/// One field of `CLUSTER INFO`; `None` when the node does not answer.
pub fn info(port: u16, field: &str) -> Result<Option<String>> {
    let Ok(text) = server::command(port, &["CLUSTER", "INFO"], RPC_TIMEOUT) else {
        return Ok(None);
    };
    Ok(server::info_field(&text, field).map(str::to_string))
}

/// A master, or a replica whose link to its master is up.
pub fn replication_up(port: u16) -> bool {
    server::command(port, &["INFO", "replication"], RPC_TIMEOUT)
        .map(|t| t.contains("role:master") || t.contains("master_link_status:up"))
        .unwrap_or(false)
}

/// `CLUSTER NODES` of the node on `port`.
pub fn nodes(port: u16) -> Result<Vec<NodeLine>> {
    let text = server::command(port, &["CLUSTER", "NODES"], RPC_TIMEOUT)?;
    if text.starts_with("ERR") {
        bail!("CLUSTER NODES on {port}: {text}");
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 8).then(|| NodeLine {
                id: f[0].to_string(),
                flags: f[2].split(',').map(String::from).collect(),
                master: f[3].to_string(),
                slots: f[8..].iter().map(|s| s.to_string()).collect(),
            })
        })
        .collect())
}

/// The line a node has for itself.
pub fn myself(port: u16) -> Result<NodeLine> {
    nodes(port)?
        .into_iter()
        .find(|n| n.has("myself"))
        .with_context(|| format!("the node on {port} lists no myself line"))
}

/// Poll `check` every 100 ms until it holds; the error names `what`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<bool>,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
