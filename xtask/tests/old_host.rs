//! The release on a real glibc 2.11: the pinned glibc built from source
//! into a target host (`cargo xtask host build`), each packaged program of
//! the 7.0 and 8.0 releases run through that host's own loader (`cargo
//! xtask host check`: TCP and TLS, Lua, fork, AOF, a replica, a cluster,
//! redis-benchmark, redis-sentinel, the checkers), and the seed's two
//! failures shown through the same loader, in its own words.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Mutex, OnceLock},
};

use common::{release, repo_root, scratch, xtask};

/// `cargo xtask host build`, once per test process (cached across runs).
fn host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    HOST.get_or_init(|| {
        // The glibc archive comes from the mirror folder (no registry serves
        // it): $PORTABLE_REDIS_MIRROR, or the shared one beside the checkout.
        let mut cmd = xtask();
        cmd.args(["host", "build"]);
        if std::env::var_os("PORTABLE_REDIS_MIRROR").is_none() {
            cmd.arg("--mirror")
                .arg(repo_root().join("../shared/mirror"));
        }
        let out = cmd.output().expect("running cargo xtask host build");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "host build failed:\n{stderr}");
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        assert!(dir.join("lib64/ld-linux-x86-64.so.2").exists(), "{dir:?}");
        dir
    })
    .clone()
}

/// One program run through the old loader.
fn through_loader(host: &Path, program: &Path, args: &[&str]) -> Output {
    xtask::host::Loader::of(host, &[])
        .unwrap()
        .command(program)
        .args(args)
        .output()
        .expect("running the old loader")
}

#[test]
fn the_built_host_is_glibc_2_11_without_memcpy_2_14() {
    let h = host();
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(h.join("host.json")).unwrap()).unwrap();
    assert_eq!(record["schema"], "portable-redis/host");
    assert_eq!(record["glibc"], "2.11.3");
    assert_eq!(record["highest_version"], "2.11", "{record}");
    assert_eq!(record["memcpy"], serde_json::json!(["GLIBC_2.2.5"]));
    // The C library, run through its own loader, says which it is.
    let libc = h.join("lib64/libc.so.6");
    let out = through_loader(&h, &libc, &[]);
    let banner = String::from_utf8_lossy(&out.stdout);
    assert!(
        banner.contains("GNU C Library") && banner.contains("2.11.3"),
        "{banner}"
    );
}

fn release_runs_on_the_host(line: &str) {
    let h = host();
    let r = release(line);
    let work = scratch(&format!("old-host-{line}"));
    let out = xtask()
        .args(["host", "check", "--json", "--redis", line, "--host"])
        .arg(&h)
        .arg("--bin")
        .arg(&r.bin)
        .arg("--work")
        .arg(&work)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "no report ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    println!("{report:#}");
    assert_eq!(report["schema"], "portable-redis/host-check");
    assert!(report["loader"]
        .as_str()
        .unwrap()
        .starts_with(h.to_str().unwrap()));
    let steps = report["steps"].as_array().unwrap();
    for want in [
        "redis-server starts",
        "PING over TLS (redis-cli --tls)",
        "Lua EVAL",
        "BGSAVE (fork)",
        "AOF rewrite",
        "a replica syncs",
        "redis-cli --cluster create (3 masters)",
        "redis-benchmark SET/GET",
        "redis-sentinel starts",
        "a crash report with its stack trace",
        "redis-check-rdb on dump.rdb",
        "redis-check-aof on the AOF",
    ] {
        let s = steps
            .iter()
            .find(|s| s["name"] == want)
            .unwrap_or_else(|| panic!("no step `{want}`: {report}"));
        assert_eq!(s["ok"], true, "{want}: {}", s["detail"]);
    }
    assert_eq!(
        report["loader_messages"],
        serde_json::json!([]),
        "the 2.11 loader printed"
    );
    assert_eq!(report["passed"], true);
    assert!(out.status.success());

    // verify reads the same host's real libraries and finds nothing missing.
    let v = xtask()
        .args(["verify", "--json", "--against"])
        .arg(&h)
        .args(["redis-server", "redis-cli", "redis-benchmark"].map(|b| r.bin.join(b)))
        .output()
        .unwrap();
    let vr: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v.status.code(), Some(0), "{vr:#}");
}

#[test]
fn the_7_0_release_runs_on_glibc_2_11() {
    release_runs_on_the_host("7.0");
}

#[test]
fn the_8_0_release_runs_on_glibc_2_11() {
    release_runs_on_the_host("8.0");
}

/// The pinned Redis 7.0 tree, built the way the seed was: the host's gcc,
/// the host's glibc, and (`tls`) the host's shared OpenSSL.
fn host_gcc_build(tls: bool) -> PathBuf {
    let out = xtask().args(["vendor", "--redis", "7.0"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tree = stdout
        .lines()
        .find(|l| l.starts_with("redis "))
        .and_then(|l| l.split_whitespace().last())
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("vendor printed {stdout}"));
    let dir = scratch(&format!("seed-host-gcc-tls-{tls}"));
    let copy = Command::new("cp")
        .arg("-a")
        .arg(tree.join("."))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(copy.success());
    let jobs = format!(
        "-j{}",
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
    let make = Command::new("make")
        .current_dir(dir.join("src"))
        .args([
            jobs.as_str(),
            "redis-server",
            "MALLOC=libc",
            "USE_SYSTEMD=no",
            if tls { "BUILD_TLS=yes" } else { "BUILD_TLS=no" },
        ])
        .output()
        .unwrap();
    assert!(
        make.status.success(),
        "host gcc build failed:\n{}",
        String::from_utf8_lossy(&make.stderr)
    );
    dir.join("src/redis-server")
}

#[test]
fn the_seeds_failures_show_through_the_old_loader() {
    let h = host();
    // Built on this host with its gcc: glibc versions the old host lacks.
    let plain = host_gcc_build(false);
    let out = through_loader(&h, &plain, &["--version"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("host-gcc build: {stderr}");
    assert!(!out.status.success());
    assert!(
        stderr.contains("version `GLIBC_2.") && stderr.contains("not found"),
        "{stderr}"
    );
    let m = xtask::host::loader_messages(&stderr);
    assert!(!m.is_empty());

    // Linked to this host's shared OpenSSL: the old host has no libssl.so.3.
    let tls = host_gcc_build(true);
    let out = through_loader(&h, &tls, &["--version"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("host-libssl build: {stderr}");
    assert!(!out.status.success());
    assert!(
        stderr.contains("libssl.so.3: cannot open shared object file"),
        "{stderr}"
    );

    // The release does neither.
    let r = release("7.0");
    let out = through_loader(&h, &r.bin.join("redis-server"), &["--version"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(xtask::host::loader_messages(&stderr).is_empty(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("v=7.0.15"));
}
