//! Rejoin: kill a master of the live cluster, let its replica take over, cut
//! the dead master's nodes.conf to end in `vars currentEpoch` (the seed
//! failure of the loader issue), and restart it with the patched binary: it
//! must start, come back as a replica of the promoted node, see
//! `cluster_state:ok`, and reach the same currentEpoch as every other node.

use std::{
    fs,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{
    cluster::{self, Cluster},
    probe::{self, Outcome, Target},
};
use crate::server;

#[derive(Debug, Clone, Serialize)]
pub struct RejoinReport {
    pub killed: String,
    pub promoted: String,
    /// The last bytes of the cut file.
    pub cut_tail: String,
    /// What the line's upstream release does with the same file.
    pub upstream: String,
    /// The warning the patched loader logged.
    pub warning: String,
    pub role: String,
    pub failover_secs: f64,
    /// From the restart to rejoined, `ok` everywhere and one currentEpoch.
    pub rejoin_secs: f64,
    pub epochs: Vec<u64>,
}

pub fn run(cluster: &mut Cluster, upstream: &Target, scratch: &Path) -> Result<RejoinReport> {
    let (m, master, r, replica) = master_and_replica(cluster)?;
    cluster.kill(m)?;
    let failover = cluster::wait_for("the replica to take over", Duration::from_secs(60), || {
        let me = cluster::myself(cluster.port(r))?;
        Ok(me.has("master") && all_ok(cluster, |i| i != m))
    })?;

    // Cut the file right after `vars currentEpoch`.
    let conf = cluster.conf(m);
    let bytes = fs::read(&conf).with_context(|| format!("reading {}", conf.display()))?;
    let at = find(&bytes, b"vars currentEpoch")
        .with_context(|| format!("{} has no vars line", conf.display()))?;
    let cut = bytes[..at + "vars currentEpoch".len()].to_vec();
    fs::write(&conf, &cut)?;
    fs::write(scratch.join("rejoin-cut-nodes.conf"), &cut)?;
    let tail_start = cut.len().saturating_sub(40);
    let cut_tail = String::from_utf8_lossy(&cut[tail_start..]).into_owned();

    // Upstream on a copy: it refuses (or worse) at every start.
    let port = server::free_cluster_port()?;
    let up = probe::probe(upstream, &cut, &scratch.join("rejoin-upstream"), port)?;
    let upstream_said = match &up.outcome {
        Outcome::Started { .. } => "started".to_string(),
        Outcome::Refused { message, code } => format!("exit {code}: {message}"),
        Outcome::Crashed { how } => format!("crashed: {how}"),
        Outcome::Hung => "hung".into(),
    };

    let binary = cluster.bin.join("redis-server");
    let restarted = Instant::now();
    let log = cluster.restart(m, &binary)?;
    let warning = log
        .lines()
        .find(|l| l.contains("nodes.conf") && l.contains("ignored"))
        .map(|l| probe::message_of(l).to_string())
        .with_context(|| {
            format!("the restarted node logged no warning about the cut line:\n{log}")
        })?;
    let id = server::command(
        cluster.port(m),
        &["CLUSTER", "MYID"],
        Duration::from_secs(2),
    )?;
    if id != master {
        bail!("the restarted node runs as {id}, not as {master}: its id was not kept");
    }
    let epochs = wait_rejoined(cluster, m, &replica)?;
    Ok(RejoinReport {
        killed: master,
        promoted: replica.clone(),
        cut_tail,
        upstream: upstream_said,
        warning,
        role: format!("slave of {replica}"),
        failover_secs: failover.as_secs_f64(),
        rejoin_secs: restarted.elapsed().as_secs_f64(),
        epochs,
    })
}

/// A master and its replica: each one's index among our nodes and id.
fn master_and_replica(cluster: &Cluster) -> Result<(usize, String, usize, String)> {
    let view = cluster::nodes(cluster.port(0))?;
    let (m, master) = (0..cluster.nodes.len())
        .find_map(|i| {
            let id = &cluster.nodes[i].id;
            view.iter()
                .find(|n| &n.id == id && n.has("master"))
                .map(|_| (i, id.clone()))
        })
        .context("no master in the cluster")?;
    let replica = view
        .iter()
        .find(|n| n.master == master)
        .map(|n| n.id.clone())
        .context("the master has no replica")?;
    let r = cluster
        .nodes
        .iter()
        .position(|n| n.id == replica)
        .context("the replica is not one of our nodes")?;
    Ok((m, master, r, replica))
}

/// `cluster_state:ok` on every node `which` selects.
fn all_ok(cluster: &Cluster, which: impl Fn(usize) -> bool) -> bool {
    (0..cluster.nodes.len()).filter(|&i| which(i)).all(|i| {
        cluster::info(cluster.port(i), "cluster_state")
            .ok()
            .flatten()
            .as_deref()
            == Some("ok")
    })
}

/// Wait until node `m` is a replica of `replica`, the cluster is ok
/// everywhere and every node has the same current epoch; the epochs.
fn wait_rejoined(cluster: &Cluster, m: usize, replica: &str) -> Result<Vec<u64>> {
    let mut epochs = Vec::new();
    cluster::wait_for(
        "the old master to rejoin as a replica with the cluster's epoch",
        Duration::from_secs(90),
        || {
            let me = cluster::myself(cluster.port(m))?;
            if !(me.has("slave") && me.master == replica) {
                return Ok(false);
            }
            epochs = (0..cluster.nodes.len())
                .map(|i| {
                    cluster::info(cluster.port(i), "cluster_current_epoch")
                        .ok()
                        .flatten()
                        .and_then(|e| e.parse().ok())
                        .unwrap_or(0)
                })
                .collect();
            Ok(all_ok(cluster, |_| true) && epochs.iter().all(|&e| e == epochs[0] && e > 0))
        },
    )?;
    Ok(epochs)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
