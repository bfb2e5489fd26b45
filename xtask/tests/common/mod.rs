//! Shared by the slow tests: one real release build per Redis line and test
//! run. The build cache (keyed by input hashes, in the usual state folder)
//! makes every later request, in this or another test binary, a no-op.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    fs,
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

/// The default target's verify policy file (the first `[[target]]` of
/// vendor/sources.toml).
pub fn default_policy() -> PathBuf {
    let root = repo_root();
    let pins = xtask::pins::Pins::load(&root).unwrap();
    root.join(&pins.target(None).unwrap().policy)
}

pub fn xtask() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xtask"));
    c.current_dir(repo_root());
    c
}

/// The state folder the xtask uses (target/portable, or
/// `$PORTABLE_REDIS_STATE`).
pub fn state() -> PathBuf {
    xtask::project::Project::discover(None).unwrap().state
}

/// A test that cannot run here, for `reason` (a missing tool, a missing
/// privilege). Under CI (`CI=true`) that is a failure; elsewhere the skip is
/// said and recorded in target/test-skips/ (ci/test.sh counts it).
pub fn skip(test: &str, reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {reason} (CI=true: a test that cannot run is a failure)");
    }
    eprintln!("skipped {test}: {reason}");
    let dir = repo_root().join("target/test-skips");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(test), reason).unwrap();
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
    release_with(line, &["--redis", line])
}

/// Run `cargo xtask dist --target TARGET` (the first Redis line) into
/// target/e2e/dist-TARGET once per process.
pub fn release_for(target: &str) -> Release {
    release_with(target, &["--target", target])
}

fn release_with(key: &str, args: &[&str]) -> Release {
    static CACHE: OnceLock<Mutex<HashMap<String, Release>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = map.get(key) {
        return r.clone();
    }
    let out = repo_root().join("target/e2e").join(format!("dist-{key}"));
    std::fs::create_dir_all(&out).unwrap();
    let result = xtask()
        .arg("dist")
        .args(args)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running cargo xtask dist");
    let log = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(
        result.status.success(),
        "cargo xtask dist {} failed:\n{log}",
        args.join(" ")
    );
    let tarball = PathBuf::from(String::from_utf8_lossy(&result.stdout).trim());
    assert!(tarball.is_file(), "dist printed {tarball:?}");
    let name = tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_end_matches(".tar.gz")
        .to_string();
    let unpacked = scratch(&format!("unpacked-{key}"));
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
    map.insert(key.to_string(), r.clone());
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

/// The CycloneDX project's own validator (cyclonedx-python-lib, strict
/// JSON mode) over an SBOM against the CycloneDX 1.5 schema it ships: its
/// errors, empty when the SBOM is valid. The library is installed from PyPI
/// into `target/cyclonedx-venv` the first time.
pub fn cyclonedx_errors(sbom: &Path) -> String {
    const PACKAGE: &str = "cyclonedx-python-lib[json-validation]==11.12.0";
    let venv = repo_root().join("target/cyclonedx-venv");
    let python = venv.join("bin/python");
    if !venv.join("ready").is_file() {
        let staging = repo_root().join(format!("target/.cyclonedx-venv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&staging)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(staging.join("bin/pip"))
                .args(["install", "--quiet", PACKAGE])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            ok,
            "installing {PACKAGE} into a venv failed (needs python3-venv and PyPI)"
        );
        std::fs::write(staging.join("ready"), PACKAGE).unwrap();
        let _ = std::fs::remove_dir_all(&venv);
        // Another test process may have won the race; either venv will do.
        let _ = std::fs::rename(&staging, &venv);
        let _ = std::fs::remove_dir_all(&staging);
    }
    let out = Command::new(python)
        .args([
            "-c",
            "import sys\n\
             from cyclonedx.validation.json import JsonStrictValidator\n\
             from cyclonedx.schema import SchemaVersion\n\
             e = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())\n\
             print(e if e else '', end='')\n",
        ])
        .arg(sbom)
        .output()
        .expect("running the CycloneDX validator");
    assert!(
        out.status.success(),
        "the validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copy what git tracks plus untracked, non-ignored files (the working tree
/// as a clean checkout with local changes would hold it).
pub fn copy_checkout(from: &Path, to: &Path) {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(from)
        .output()
        .unwrap();
    assert!(out.status.success());
    for rel in out.stdout.split(|b| *b == 0).filter(|s| !s.is_empty()) {
        let rel = Path::new(std::str::from_utf8(rel).unwrap());
        let src = from.join(rel);
        if !src.is_file() {
            continue; // deleted in the working tree
        }
        let dst = to.join(rel);
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(&src, &dst).unwrap();
    }
}

/// `r` was built with the repository's profile of `redis` (`redis-7.0.15`)
/// for the default target: BUILDINFO names it with its hash, Redis's
/// compiles read it, and clang found no function whose counters no longer
/// fit its code.
pub fn assert_reads_its_profile(r: &Release, redis: &str) {
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("BUILDINFO.json")).unwrap()).unwrap();
    let profile = format!("profiles/{redis}/x86_64-linux-glibc2.11.profdata");
    let pgo = &info["flags"]["pgo"];
    assert_eq!(
        pgo["mode"], "use",
        "{redis} was built without {profile}: train it with `cargo xtask pgo` and commit it ({pgo})"
    );
    assert_eq!(pgo["profile"], profile.as_str());
    assert_eq!(
        pgo["sha256"].as_str().unwrap(),
        xtask::treehash::sha256_file(&repo_root().join(&profile)).unwrap()
    );
    let key = info["build_keys"]["redis"].as_str().unwrap();
    let log = state()
        .join("logs")
        .join(format!("{redis}-{}", &key[..16]))
        .join("build.log");
    let log = fs::read_to_string(&log).unwrap();
    assert!(log.contains("-fprofile-instr-use=/build/redis.profdata"));
    let stale: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("profile data may be out of date"))
        .collect();
    assert!(
        stale.is_empty(),
        "{profile} no longer fits the sources: retrain it with `cargo xtask pgo --redis {redis}` \
         and commit it:\n{}",
        stale.join("\n")
    );
}
