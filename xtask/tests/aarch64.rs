//! The aarch64 target (`aarch64-linux-glibc2.17`): `dist` builds it, verifies
//! it against the aarch64 policy and smoke-tests it under qemu-user; here its
//! programs run under the same emulator (Debian's arm64 C library as their
//! root) and serve: PING over TCP and TLS, SET and GET, a Lua script,
//! INCRBYFLOAT (128-bit `long double` arithmetic, done by the compiler
//! runtime's routines), and a replica that takes the master's data.
//! jemalloc is built for 64 KiB pages, the largest an aarch64 kernel runs, so
//! the same binary serves 4, 16 and 64 KiB kernels. The x86_64 policy refuses
//! the programs as another machine's.

mod common;

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{release_for, repo_root, scratch, xtask};
use xtask::{
    emulator::{self, Runner},
    pins::Pins,
    project::Project,
    server::{self, Server},
    smoke,
};

const TARGET: &str = "aarch64-linux-glibc2.17";

/// The runner `dist` uses for the target.
fn runner() -> Runner {
    let pins = Pins::load(&repo_root()).unwrap();
    let target = pins.target(Some(TARGET)).unwrap();
    let project = Project::new(repo_root(), common::state());
    emulator::runner(&project, target, false).unwrap()
}

/// redis-cli (under `runner`) against `port`; its trimmed output.
fn cli(
    runner: &Runner,
    bin: &Path,
    port: u16,
    tls: Option<&smoke::TlsFiles>,
    args: &[&str],
) -> String {
    let mut c = runner.command(&bin.join("redis-cli"));
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(tls) = tls {
        c.args(tls.client_args());
    }
    let out = c.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_aarch64_release_serves_and_replicates_under_qemu() {
    let r = release_for(TARGET);
    assert!(
        r.tarball
            .to_string_lossy()
            .ends_with("-aarch64-linux-glibc2.17.tar.gz"),
        "{}",
        r.tarball.display()
    );
    assert!(
        r.log.contains("under qemu-aarch64 -cpu cortex-a57"),
        "dist's smoke test must run under the emulator:\n{}",
        r.log
    );
    let runner = runner();
    let bin = &r.bin;
    let work = scratch("aarch64");
    let tls = smoke::make_certificates(&work.join("tls")).unwrap();

    let (port, tls_port) = (server::free_port().unwrap(), server::free_port().unwrap());
    let mut args = server::loopback_args(port, &[]);
    args.extend(tls.server_args(tls_port));
    let mut master = Server::spawn_command(
        runner.command(&bin.join("redis-server")),
        &work.join("master"),
        port,
        &args,
    )
    .unwrap();
    master.wait_ready(Duration::from_secs(60)).unwrap();

    let plain = |args: &[&str]| cli(&runner, bin, port, None, args);
    let over_tls = |args: &[&str]| cli(&runner, bin, tls_port, Some(&tls), args);
    assert_eq!(plain(&["PING"]), "PONG");
    assert_eq!(over_tls(&["PING"]), "PONG");
    assert_eq!(over_tls(&["SET", "k", "v"]), "OK");
    assert_eq!(plain(&["GET", "k"]), "v");
    let script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) * 2";
    assert_eq!(plain(&["EVAL", script, "1", "n", "21"]), "42");
    for _ in 0..3 {
        plain(&["INCRBYFLOAT", "f", "0.1"]);
    }
    assert_eq!(plain(&["GET", "f"]), "0.3");
    assert_eq!(plain(&["INCRBYFLOAT", "f", "1.5e3"]), "1500.3");

    let info = plain(&["INFO", "server"]);
    assert!(info.contains("aarch64"), "{info}");
    let memory = plain(&["INFO", "memory"]);
    let allocator = server::info_field(&memory, "mem_allocator").unwrap_or("");
    assert!(allocator.starts_with("jemalloc"), "{memory}");
    // jemalloc's own statistics name the page size it was built for.
    let stats = plain(&["MEMORY", "MALLOC-STATS"]);
    assert!(
        stats.lines().any(|l| l.trim() == "Page size: 65536"),
        "jemalloc must be built for 64 KiB pages:\n{}",
        stats.lines().take(30).collect::<Vec<_>>().join("\n")
    );

    // A replica (also under the emulator) takes the master's data.
    let replica_port = server::free_port().unwrap();
    let port_text = port.to_string();
    let replica_args =
        server::loopback_args(replica_port, &["--replicaof", "127.0.0.1", &port_text]);
    let mut replica = Server::spawn_command(
        runner.command(&bin.join("redis-server")),
        &work.join("replica"),
        replica_port,
        &replica_args,
    )
    .unwrap();
    replica.wait_ready(Duration::from_secs(60)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let replication = cli(&runner, bin, replica_port, None, &["INFO", "replication"]);
        if server::info_field(&replication, "master_link_status") == Some("up") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replica did not connect within 60 s:\n{replication}\n{}",
            replica.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(cli(&runner, bin, replica_port, None, &["GET", "k"]), "v");
    assert_eq!(
        cli(&runner, bin, replica_port, None, &["GET", "f"]),
        "1500.3"
    );
    replica.kill().unwrap();
    master.kill().unwrap();
}

/// The aarch64 policy passes the packaged programs; to the x86_64 policy
/// they are unusable input (exit 2), another machine's programs.
#[test]
fn the_aarch64_binaries_pass_their_own_policy_only() {
    let r = release_for(TARGET);
    let programs = ["redis-server", "redis-cli", "redis-benchmark"].map(|b| r.bin.join(b));
    let out = xtask()
        .args(["verify", "--json", "--policy"])
        .arg(repo_root().join("policy/aarch64-linux-gnu.2.17.toml"))
        .args(&programs)
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["kind"], "Pie", "{f:#}");
        assert_eq!(f["interpreter"], "/lib/ld-linux-aarch64.so.1", "{f:#}");
        assert_eq!(f["violations"].as_array().unwrap().len(), 0, "{f:#}");
    }
    let out = xtask()
        .arg("verify")
        .arg("--policy")
        .arg(common::default_policy())
        .args(&programs)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("a program for aarch64, and the policy x86_64-linux-gnu.2.11 is for x86_64"),
        "{said}"
    );
}

/// The aarch64 release's install.sh on this x86_64 machine refuses first
/// thing, and says why: run as an unprivileged user (who could write
/// nothing anyway), it gives that reason, not "run as root", so the check
/// comes before everything the script writes.
#[test]
fn install_refuses_a_release_for_another_machine() {
    if std::env::consts::ARCH == "aarch64" {
        common::skip(
            "aarch64_install_refusal",
            "this machine runs aarch64 programs itself",
        );
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        common::skip(
            "aarch64_install_refusal",
            "setpriv (util-linux) is not installed",
        );
        return;
    }
    let r = release_for(TARGET);
    // A copy that user nobody can read and run.
    let d = tempfile::tempdir().unwrap();
    let rel = d.path().join("release");
    std::fs::create_dir_all(rel.join("bin")).unwrap();
    for f in ["install.sh", "bin/redis-server"] {
        std::fs::copy(r.root.join(f), rel.join(f)).unwrap();
    }
    for p in [d.path(), rel.as_path(), &rel.join("bin")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let prefix = d.path().join("opt");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"])
        .arg(rel.join("install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .args(["--init", "none"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("Exec format error")
            && said.contains("take the one built for this x86_64 host"),
        "{said}"
    );
    assert!(!said.contains("run as root"), "{said}");
    assert!(
        !prefix.exists(),
        "nothing may be written: {}",
        prefix.display()
    );
}

/// `dist --check-upstream` refuses the target before it builds anything:
/// Redis's own suites would start its programs directly on this machine.
#[test]
fn check_upstream_refuses_the_target_before_building() {
    if std::env::consts::ARCH == "aarch64" {
        common::skip(
            "aarch64_check_upstream_refusal",
            "this machine runs aarch64 programs itself",
        );
        return;
    }
    for target in [TARGET, "all"] {
        let out = xtask()
            .args(["dist", "--check-upstream", "--target", target, "--out"])
            .arg(scratch("aarch64-check-upstream"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{said}");
        assert!(said.contains("test-upstream --bin DIR"), "{said}");
        assert!(
            !said.contains("dist: Redis"),
            "nothing may be built: {said}"
        );
    }
}
