//! Crash-safety of writes: one node of the live cluster is killed with
//! SIGKILL again and again while churn makes it rewrite nodes.conf (epoch
//! bumps, slots marked migrating and stable again, manual failovers in its
//! shard). After every kill the file on disk must be complete and load: the
//! node restarts from it with the patched binary, keeps its id, and needs no
//! healing.

use std::{
    fs,
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::cluster::{self, Cluster};
use crate::server;

const RPC: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Serialize)]
pub struct CrashReport {
    pub kills: usize,
    /// Surviving files that were complete and loaded (must equal `kills`).
    pub loaded: usize,
    /// Kills that landed inside a save (its temporary file was left behind).
    pub inside_save: usize,
    /// Churn commands that were accepted.
    pub churn: usize,
    pub failovers: usize,
    /// Seconds until the whole cluster was `ok` again after the last kill.
    pub settle_secs: f64,
}

pub fn run(cluster: &mut Cluster, kills: usize, seed: u64) -> Result<CrashReport> {
    let v = 0;
    let ids: Vec<(String, u16)> = (0..cluster.nodes.len())
        .map(|i| (cluster.nodes[i].id.clone(), cluster.port(i)))
        .collect();
    let my_id = ids[v].0.clone();
    let port = ids[v].1;
    let dir = cluster.nodes[v].server.dir.clone();
    let conf = cluster.conf(v);
    let binary = cluster.bin.join("redis-server");
    let stop = AtomicBool::new(false);
    let churn = AtomicUsize::new(0);
    let failovers = AtomicUsize::new(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut loaded = 0;

    let result = std::thread::scope(|s| -> Result<()> {
        s.spawn(|| churn_loop(&ids, v, &stop, &churn, &failovers));
        let outcome = (|| -> Result<()> {
            for k in 1..=kills {
                std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
                cluster.kill(v)?;
                let bytes =
                    fs::read(&conf).with_context(|| format!("reading {}", conf.display()))?;
                if let Err(why) = complete(&bytes) {
                    let keep = dir.join(format!("torn-after-kill-{k}.conf"));
                    fs::write(&keep, &bytes)?;
                    bail!(
                        "kill {k}: nodes.conf is not a complete file ({why}); kept as {}",
                        keep.display()
                    );
                }
                let log = cluster
                    .restart(v, &binary)
                    .with_context(|| format!("kill {k}: the surviving nodes.conf did not load"))?;
                if let Some(l) = log.lines().find(|l| l.contains("ignored")) {
                    bail!("kill {k}: the surviving file needed healing: {l}");
                }
                let id = server::command(port, &["CLUSTER", "MYID"], Duration::from_secs(2))?;
                if id != my_id {
                    bail!("kill {k}: the node came back as {id}, not {my_id}");
                }
                loaded += 1;
            }
            Ok(())
        })();
        stop.store(true, Ordering::Relaxed);
        outcome
    });
    result?;
    let settle = cluster.wait_settled(Duration::from_secs(120))?;
    let inside_save = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("nodes.conf.tmp-")
        })
        .count();
    Ok(CrashReport {
        kills,
        loaded,
        inside_save,
        churn: churn.load(Ordering::Relaxed),
        failovers: failovers.load(Ordering::Relaxed),
        settle_secs: settle.as_secs_f64(),
    })
}

/// What Redis writes: node lines, then `vars currentEpoch N lastVoteEpoch N`,
/// then a newline.
fn complete(bytes: &[u8]) -> std::result::Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| format!("{} bytes, no final newline", bytes.len()))?;
    let last = body.lines().last().unwrap_or("");
    let f: Vec<&str> = last.split(' ').collect();
    let numbers = f.len() == 5 && f[2].parse::<u64>().is_ok() && f[4].parse::<u64>().is_ok();
    if f.first() != Some(&"vars") || !numbers {
        return Err(format!("last line is {last:?}"));
    }
    if body.lines().count() != cluster::NODES + 1 {
        return Err(format!("{} lines", body.lines().count()));
    }
    Ok(())
}

/// Keep node `v` rewriting its nodes.conf until `stop`.
fn churn_loop(
    ids: &[(String, u16)],
    v: usize,
    stop: &AtomicBool,
    churn: &AtomicUsize,
    failovers: &AtomicUsize,
) {
    let port = ids[v].1;
    let ok = |r: Result<String>| {
        if matches!(&r, Ok(s) if !s.starts_with("ERR")) {
            churn.fetch_add(1, Ordering::Relaxed);
        }
    };
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        ok(server::command(port, &["CLUSTER", "BUMPEPOCH"], RPC));
        let Ok(view) = cluster::nodes(port) else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let Some(me) = view.iter().find(|n| n.has("myself")) else {
            continue;
        };
        if me.has("master") {
            // Mark a slot as migrating to another master, then stable again.
            let slot = me
                .slots
                .first()
                .and_then(|s| s.split('-').next())
                .map(str::to_string);
            let other = view
                .iter()
                .find(|n| n.has("master") && !n.has("myself") && !n.has("fail"));
            if let (Some(slot), Some(other)) = (slot, other) {
                ok(server::command(
                    port,
                    &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &other.id],
                    RPC,
                ));
                ok(server::command(
                    port,
                    &["CLUSTER", "SETSLOT", &slot, "STABLE"],
                    RPC,
                ));
            }
        }
        if round % 10 == 0 {
            // A manual failover in the victim's shard, in whichever direction.
            let replica_port = if me.has("slave") {
                Some(port)
            } else {
                view.iter()
                    .find(|n| n.master == me.id && !n.has("fail"))
                    .and_then(|r| ids.iter().find(|(id, _)| *id == r.id))
                    .map(|(_, p)| *p)
            };
            if let Some(p) = replica_port {
                if matches!(server::command(p, &["CLUSTER", "FAILOVER"], RPC), Ok(s) if s == "OK") {
                    failovers.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_files_are_recognised() {
        let lines: String = (0..cluster::NODES)
            .map(|i| format!("{i:040} 127.0.0.1:1@2 master - 0 0 1 connected\n"))
            .collect();
        let good = format!("{lines}vars currentEpoch 6 lastVoteEpoch 5\n");
        assert!(complete(good.as_bytes()).is_ok());
        assert!(complete(&good.as_bytes()[..good.len() - 1]).is_err());
        assert!(complete(format!("{lines}vars currentEpoch\n").as_bytes()).is_err());
        assert!(complete(b"vars currentEpoch 1 lastVoteEpoch 1\n").is_err());
    }
}
