//! The static target (`x86_64-linux-musl-static`): its release is built,
//! verified against the static policy and smoke-tested by `dist`; here its
//! programs run in a root that holds nothing but them (no C library, no
//! loader), answer over TLS, refuse a module with a clear error; the
//! packaged binaries fail the glibc policy (they have no interpreter);
//! `dist --target all` writes every target's release into one folder, and
//! `verify-release` checks each archive under its own target's policy.

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{release_for, repo_root, scratch, xtask};
use xtask::{
    server::{self, Server},
    smoke,
};

const TARGET: &str = "x86_64-linux-musl-static";

/// bwrap with a root of nothing but `binds` (read-only, each at its own
/// path), /dev, /proc and an empty /tmp; the host's network.
fn bare_root(binds: &[&Path], writable: &[&Path]) -> Command {
    let mut c = Command::new("bwrap");
    c.args([
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
    ]);
    c.args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]);
    for b in binds {
        c.arg("--ro-bind").arg(b).arg(b);
    }
    for w in writable {
        c.arg("--bind").arg(w).arg(w);
    }
    c
}

/// Run `cmd`; it must succeed (its stderr shown otherwise). Its stdout.
fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli(bin: &Path, tls: &smoke::TlsFiles, port: u16, args: &[&str]) -> String {
    stdout_of(
        bare_root(&[bin, tls.ca.parent().unwrap()], &[])
            .arg(bin.join("redis-cli"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(tls.client_args())
            .args(args),
    )
    .trim()
    .to_string()
}

#[test]
fn the_static_release_runs_in_a_root_without_a_c_library() {
    if Command::new("bwrap").arg("--version").output().is_err() {
        common::skip(
            "musl_static_bare_root",
            "bubblewrap (`bwrap`) is not installed",
        );
        return;
    }
    let r = release_for(TARGET);
    assert!(
        r.tarball
            .to_string_lossy()
            .ends_with("-x86_64-linux-musl-static.tar.gz"),
        "{}",
        r.tarball.display()
    );
    let bin: PathBuf = r.bin.clone();
    // musl is inside every program: its licence and an SBOM component say so.
    assert!(r.root.join("LICENSES/musl/COPYRIGHT").is_file());
    let sbom_path = r.root.join("share/doc/sbom.cdx.json");
    let sbom: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&sbom_path).unwrap()).unwrap();
    let musl = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "musl")
        .unwrap_or_else(|| panic!("no musl component in {}", sbom_path.display()));
    assert_eq!(musl["licenses"][0]["expression"], "MIT", "{musl:#}");
    let errors = common::cyclonedx_errors(&sbom_path);
    assert!(errors.is_empty(), "{errors}");
    let work = scratch("musl-static");
    let tls = smoke::make_certificates(&work.join("tls")).unwrap();
    let data = work.join("data");

    // The root has no C library: the host's own `true` cannot start in it.
    let host_true = Path::new("/bin/true");
    let out = bare_root(&[host_true], &[])
        .arg(host_true)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("No such file or directory"),
        "a dynamic program must fail to start in the bare root (its loader is missing): {said}"
    );

    let (port, tls_port) = (server::free_port().unwrap(), server::free_port().unwrap());
    let mut args = server::loopback_args(port, &["--enable-module-command", "yes"]);
    args.extend(tls.server_args(tls_port));
    let mut cmd = bare_root(&[&bin, &work.join("tls")], &[&data]);
    cmd.arg(bin.join("redis-server"));
    let mut s = Server::spawn_command(cmd, &data, port, &args).unwrap();
    s.wait_ready(Duration::from_secs(20)).unwrap();

    assert_eq!(cli(&bin, &tls, tls_port, &["PING"]), "PONG");
    assert_eq!(cli(&bin, &tls, tls_port, &["SET", "k", "v"]), "OK");
    assert_eq!(cli(&bin, &tls, tls_port, &["GET", "k"]), "v");
    let info = cli(&bin, &tls, tls_port, &["INFO", "memory"]);
    let allocator = server::info_field(&info, "mem_allocator").unwrap_or("");
    assert!(allocator.starts_with("jemalloc"), "{info}");
    let server_info = cli(&bin, &tls, tls_port, &["INFO", "server"]);
    assert!(
        server_info.contains("tls_library:OpenSSL 3.5.7"),
        "{server_info}"
    );

    // A static binary cannot load a module: an error reply and a log line
    // that says why, and the server goes on.
    let module = work.join("module.so");
    std::fs::write(
        work.join("module.c"),
        "int RedisModule_OnLoad(void) { return 0; }\n",
    )
    .unwrap();
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&module)
        .arg(work.join("module.c"))
        .status()
        .unwrap();
    assert!(built.success());
    std::fs::copy(&module, data.join("module.so")).unwrap();
    let reply = cli(
        &bin,
        &tls,
        tls_port,
        &["MODULE", "LOAD", &data.join("module.so").to_string_lossy()],
    );
    assert!(reply.contains("Error loading the extension"), "{reply}");
    assert_eq!(cli(&bin, &tls, tls_port, &["PING"]), "PONG");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("Dynamic loading not supported"), "{log}");
    drop(s);

    // Asked to load it at startup, it says why and exits (within 30 s, or
    // the test fails rather than waits).
    let log = data.join("startup.log");
    let mut child = bare_root(&[&bin], &[&data])
        .arg(bin.join("redis-server"))
        .args(server::loopback_args(server::free_port().unwrap(), &[]))
        .arg("--loadmodule")
        .arg(data.join("module.so"))
        .arg("--logfile")
        .arg(&log)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("redis-server --loadmodule kept running: it must refuse the module and exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!status.success(), "{said}");
    assert!(said.contains("Dynamic loading not supported"), "{said}");
}

/// `cargo xtask verify` of the packaged programs: the static policy passes
/// them, the default (glibc) policy refuses each for having no interpreter.
#[test]
fn the_static_binaries_pass_the_static_policy_only() {
    let r = release_for(TARGET);
    let programs = ["redis-server", "redis-cli", "redis-benchmark"].map(|b| r.bin.join(b));
    let run = |policy: &Path| {
        let out = xtask()
            .args(["verify", "--json", "--policy"])
            .arg(policy)
            .args(&programs)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (out.status.code(), report)
    };
    let (code, report) = run(&repo_root().join("policy/x86_64-linux-musl-static.toml"));
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["policy"]["linkage"], "static");
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &report);
    assert!(errors.is_empty(), "{errors:#?}");
    for f in report["files"].as_array().unwrap() {
        assert_eq!(f["kind"], "Pie", "{f:#}");
        assert_eq!(f["interpreter"], serde_json::Value::Null);
        assert_eq!(f["needed"].as_array().unwrap().len(), 0);
    }
    let (code, report) = run(&common::default_policy());
    assert_eq!(code, Some(1), "{report:#}");
    for f in report["files"].as_array().unwrap() {
        let rules: Vec<&str> = f["violations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["rule"].as_str())
            .collect();
        assert!(rules.contains(&"interpreter"), "{rules:?}");
    }
    // `dist --target all` writes every target's release into one folder,
    // which verify-release checks archive by archive under its own target.
    let all = scratch("dist-all");
    let printed = stdout_of(xtask().args(["dist", "--target", "all", "--out"]).arg(&all));
    let sums = std::fs::read_to_string(all.join("SHA256SUMS")).unwrap();
    let pins = xtask::pins::Pins::load(&repo_root()).unwrap();
    for t in &pins.targets {
        let tarball = format!("-{}.tar.gz", t.name);
        assert!(printed.lines().any(|l| l.ends_with(&tarball)), "{printed}");
        assert!(sums.lines().any(|l| l.ends_with(&tarball)), "{sums}");
    }
    let out = xtask().arg("verify-release").arg(&all).output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("passed under x86_64-linux-musl-static"),
        "{said}"
    );
    assert!(
        said.contains("passed under x86_64-linux-gnu.2.11"),
        "{said}"
    );
    assert!(
        said.contains("passed under aarch64-linux-gnu.2.17"),
        "{said}"
    );
}
