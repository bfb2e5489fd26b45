//! What the last packaging of a release produced, so that a `dist` with
//! nothing changed does not strip, pack and smoke-test the same bytes again.
//!
//! A record is kept per release name in `<state>/packages/<name>.record/`:
//! `record.json` (the key, the archives' hashes, the BUILDINFO and SBOM copies
//! beside the archives, the smoke result) and `bin/` (the stripped programs
//! that went into the archive, verified again on every reuse). The key covers
//! every input of packaging: both build keys, the whole pins file, the patch
//! series, the toolchain, the release name, and the identity of the xtask
//! binary itself (length and modification time), so any change to the
//! packaging code or its inputs packages again.

use std::{
    fs,
    path::{Path, PathBuf},
    time::UNIX_EPOCH,
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{fsutil, project::Project, smoke::SmokeReport, treehash};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub key: String,
    pub tarball_sha256: String,
    pub debug_sha256: String,
    /// `<name>.buildinfo.json` and `<name>.cdx.json` as written beside the archives.
    pub buildinfo: String,
    pub sbom: String,
    /// Set when the smoke test ran on this archive and passed.
    pub smoke: Option<SmokeReport>,
}

/// The record key for packaging `inputs` with this xtask binary; `None` when
/// the binary cannot be identified (then nothing is reused).
pub fn key(inputs: &serde_json::Value) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    // The running image itself, even when a rebuild has replaced the file.
    let meta = fs::metadata("/proc/self/exe")
        .or_else(|_| fs::metadata(&exe))
        .ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    let all = serde_json::json!({
        "xtask": {
            "path": exe,
            "len": meta.len(),
            "mtime_ns": mtime.as_nanos().to_string(),
        },
        "inputs": inputs,
    });
    Some(treehash::sha256_bytes(all.to_string().as_bytes()))
}

fn dir(project: &Project, name: &str) -> PathBuf {
    project
        .state
        .join("packages")
        .join(format!("{name}.record"))
}

/// The record for `name` when it was made under `key`, with its `bin/` folder.
pub fn load(project: &Project, name: &str, key: &str) -> Option<(ReleaseRecord, PathBuf)> {
    let dir = dir(project, name);
    let record: ReleaseRecord =
        serde_json::from_slice(&fs::read(dir.join("record.json")).ok()?).ok()?;
    (record.key == key).then(|| (record, dir.join("bin")))
}

/// Replace the record for `name` (atomically: a reader sees the old or the new one).
pub fn store(project: &Project, name: &str, record: &ReleaseRecord, bin: &Path) -> Result<()> {
    let dest = dir(project, name);
    let staging = fsutil::Staging::beside(&dest)?;
    fsutil::copy_tree(bin, &staging.path().join("bin"))
        .context("keeping the stripped programs with the release record")?;
    let mut json = serde_json::to_string_pretty(record)?;
    json.push('\n');
    fs::write(staging.path().join("record.json"), json)?;
    staging.commit(&dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str) -> ReleaseRecord {
        ReleaseRecord {
            key: key.into(),
            tarball_sha256: "aa".into(),
            debug_sha256: "bb".into(),
            buildinfo: "{}\n".into(),
            sbom: "{}\n".into(),
            smoke: Some(SmokeReport {
                plain_ping: "PONG".into(),
                tls_ping: "PONG".into(),
                server_version: "7.0.15".into(),
            }),
        }
    }

    #[test]
    fn a_record_is_found_only_under_its_key() {
        let d = tempfile::tempdir().unwrap();
        let project = Project {
            root: d.path().into(),
            state: d.path().join("state"),
        };
        let bin = d.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("redis-server"), b"elf").unwrap();
        assert!(load(&project, "rel", "k1").is_none());
        store(&project, "rel", &record("k1"), &bin).unwrap();
        let (got, got_bin) = load(&project, "rel", "k1").unwrap();
        assert_eq!(got, record("k1"));
        assert_eq!(fs::read(got_bin.join("redis-server")).unwrap(), b"elf");
        assert!(load(&project, "rel", "k2").is_none(), "another key");
        assert!(load(&project, "other", "k1").is_none(), "another release");
        store(&project, "rel", &record("k2"), &bin).unwrap();
        assert!(load(&project, "rel", "k1").is_none(), "replaced");
        assert!(load(&project, "rel", "k2").is_some());
    }

    #[test]
    fn the_key_depends_on_the_inputs() {
        let a = key(&serde_json::json!({"redis": "1"})).unwrap();
        let b = key(&serde_json::json!({"redis": "2"})).unwrap();
        assert_ne!(a, b);
        assert_eq!(a, key(&serde_json::json!({"redis": "1"})).unwrap());
    }
}
