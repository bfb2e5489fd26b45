//! Shared by the slow tests: one real release build per Redis line and test
//! run. The build cache (keyed by input hashes, in the usual state folder)
//! makes every later request, in this or another test binary, a no-op.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, OnceLock},
};

/// A release made by `cargo xtask dist`, unpacked.
#[derive(Debug, Clone)]
pub struct Release {
    pub tarball: PathBuf,
    pub out: PathBuf,
    /// The unpacked release's top folder.
    pub root: PathBuf,
    pub bin: PathBuf,
    /// What `dist` printed on stderr.
    pub log: String,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(repo_root());
    c
}

/// Scratch space below target/, kept after the run for inspection.
pub fn scratch(name: &str) -> PathBuf {
    let p = repo_root().join("target/e2e").join(name);
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Run `cargo xtask dist --redis LINE` into target/e2e/dist-LINE once per process.
pub fn release(line: &str) -> Release {
    static CACHE: OnceLock<Mutex<HashMap<String, Release>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = map.get(line) {
        return r.clone();
    }
    let out = repo_root().join("target/e2e").join(format!("dist-{line}"));
    std::fs::create_dir_all(&out).unwrap();
    let result = xtask()
        .args(["dist", "--redis", line, "--out"])
        .arg(&out)
        .output()
        .expect("running cargo xtask dist");
    let log = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(
        result.status.success(),
        "cargo xtask dist --redis {line} failed:\n{log}"
    );
    let tarball = PathBuf::from(String::from_utf8_lossy(&result.stdout).trim());
    assert!(tarball.is_file(), "dist printed {tarball:?}");
    let name = tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    let unpacked = scratch(&format!("unpacked-{line}"));
    let status = Command::new("tar")
        .arg("xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    let root = unpacked.join(&name);
    let r = Release {
        tarball,
        out,
        bin: root.join("bin"),
        root,
        log,
    };
    map.insert(line.to_string(), r.clone());
    r
}

/// `cargo xtask verify --json` on the packaged programs: the exit code and the report.
pub fn verify_packaged(r: &Release) -> (Option<i32>, serde_json::Value) {
    let out = xtask()
        .args(["verify", "--json"])
        .args(["redis-server", "redis-cli", "redis-benchmark"].map(|b| r.bin.join(b)))
        .output()
        .expect("running cargo xtask verify");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code(), report)
}
