//! The whole pipeline on the real sources: `cargo xtask dist` makes a release
//! whose packaged binaries pass verify and answer PING over TLS and TCP.

mod common;
#[path = "support/jsonschema.rs"]
mod jsonschema;

use std::{fs, process::Command};

use common::{release, scratch, xtask};

const LINE: &str = "7.0";

#[test]
fn release_holds_binaries_licences_buildinfo_and_checksums() {
    let r = release(LINE);
    let name = r
        .tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name, "portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz");
    for p in ["redis-server", "redis-cli", "redis-benchmark"] {
        assert!(r.bin.join(p).is_file(), "{p} missing");
    }
    for alias in ["redis-check-aof", "redis-check-rdb", "redis-sentinel"] {
        assert_eq!(
            fs::read_link(r.bin.join(alias)).unwrap().to_str(),
            Some("redis-server")
        );
    }
    for licence in [
        "LICENSES/redis-7.0.15/COPYING",
        "LICENSES/openssl-3.5.7/LICENSE.txt",
        "LICENSES/redis-7.0.15/deps/jemalloc/COPYING",
    ] {
        assert!(r.root.join(licence).is_file(), "{licence} missing");
    }
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("BUILDINFO.json")).unwrap()).unwrap();
    assert_eq!(info["sandbox"], "bwrap");
    assert_eq!(info["source_date_epoch"], 1_704_758_400u64);
    assert_eq!(info["sources"].as_array().unwrap().len(), 2);
    assert!(info["patches"].as_array().unwrap().len() >= 2);
    assert_eq!(
        info["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["build_id"].is_string())
            .count(),
        3
    );
    // The files for hosts and people, each listed in BUILDINFO with its hash.
    let listed: Vec<&str> = info["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    for f in [
        "README",
        "RELEASE.md",
        "install.sh",
        "etc/redis.conf",
        "etc/sentinel.conf",
        "etc/init.d/redis-server",
        "etc/init.d/redis-sentinel",
        "lib/systemd/system/redis-server.service",
        "lib/systemd/system/redis-sentinel.service",
        "share/doc/VERIFY.txt",
        "share/doc/VERIFY.json",
        "share/doc/sbom.cdx.json",
    ] {
        assert!(r.root.join(f).is_file(), "{f} missing");
        assert!(listed.contains(&f), "{f} not in BUILDINFO's outputs");
    }
    for f in ["install.sh", "etc/init.d/redis-server"] {
        let mode = fs::metadata(r.root.join(f)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111,
            0o111,
            "{f}"
        );
    }
    // RELEASE.md names every patch of the series with its reason.
    let notes = fs::read_to_string(r.root.join("RELEASE.md")).unwrap();
    let series = fs::read_to_string(common::repo_root().join("patches/redis/7.0/series")).unwrap();
    for patch in series
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let line = notes
            .lines()
            .find(|l| l.contains(&format!("`{patch}`: ")))
            .unwrap_or_else(|| panic!("{patch} not in RELEASE.md:\n{notes}"));
        assert!(!line.contains("(no subject line)"), "{line}");
    }
    assert!(notes.contains("3 of 3 programs passed"), "{notes}");
    assert!(
        notes.contains("answered PONG over TCP and PONG over TLS"),
        "{notes}"
    );
    // The SBOM lists every component with its licence and tree hash.
    let sbom: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("share/doc/sbom.cdx.json")).unwrap()).unwrap();
    let names: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for c in [
        "redis",
        "openssl",
        "jemalloc",
        "lua",
        "hiredis",
        "linenoise",
        "hdr_histogram",
    ] {
        assert!(names.contains(&c), "{c} missing from the SBOM: {names:?}");
    }
    // The debug archive holds the unstripped binaries under their build-ids.
    let debug = r.out.join(name.replace(".tar.gz", "-debug.tar.gz"));
    let list = Command::new("tar").arg("tzf").arg(&debug).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for o in info["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["build_id"].is_string())
    {
        let id = o["build_id"].as_str().unwrap();
        assert!(
            list.contains(&format!(".build-id/{}/{}.debug", &id[..2], &id[2..])),
            "{id} not in {list}"
        );
    }
    // SHA256SUMS covers the tarball with its real hash.
    let sums = fs::read_to_string(r.out.join("SHA256SUMS")).unwrap();
    let line = sums
        .lines()
        .find(|l| l.ends_with(&name))
        .expect("tarball listed in SHA256SUMS");
    let out = Command::new("sha256sum").arg(&r.tarball).output().unwrap();
    assert_eq!(
        line.split_whitespace().next(),
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
    );
}

#[test]
fn packaged_binaries_pass_verify() {
    let r = release(LINE);
    // All six: the three programs and the three symlinks to redis-server.
    let six = [
        "redis-server",
        "redis-cli",
        "redis-benchmark",
        "redis-check-aof",
        "redis-check-rdb",
        "redis-sentinel",
    ]
    .map(|b| r.bin.join(b));
    let out = xtask()
        .args(["verify", "--json"])
        .args(&six)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &report);
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(report["policy"]["glibc"], "2.11");
    assert_eq!(report["policy"]["openssl"], "3.5.7");
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 6);
    for f in files {
        assert_eq!(f["violations"].as_array().unwrap().len(), 0, "{f}");
        assert!(f["imports"].as_u64().unwrap() > 100, "{f}");
        assert_eq!(f["openssl"], serde_json::json!(["3.5.7"]), "{f}");
        assert_eq!(f["interpreter"], "/lib64/ld-linux-x86-64.so.2");
        let h = &f["hardening"];
        assert_eq!(
            (
                &h["pie"],
                &h["relro"],
                &h["nx_stack"],
                &h["textrel"],
                &h["stack_protector"]
            ),
            (
                &true.into(),
                &"full".into(),
                &true.into(),
                &false.into(),
                &true.into()
            ),
            "{f}"
        );
        assert!(!h["fortify"].as_array().unwrap().is_empty(), "{f}");
        let needed: Vec<&str> = f["needed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(
            !needed
                .iter()
                .any(|n| n.contains("ssl") || n.contains("crypto")),
            "{needed:?}"
        );
    }
    // The report packaged in the release is the same kind of document.
    let packaged: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("share/doc/VERIFY.json")).unwrap()).unwrap();
    let errors = jsonschema::validate(&jsonschema::verify_report_schema(), &packaged);
    assert!(errors.is_empty(), "{errors:#?}");
    // Paths in it are the release's and the toolchain's, not this machine's.
    assert_eq!(packaged["files"][0]["path"], "bin/redis-server");
    assert_eq!(packaged["files"][0]["map"], "build/maps/redis-server.map");
    assert_eq!(packaged["reference"], "zig-0.17.1/lib/libc/glibc/abilists");
    // The policy file is named with its hash in VERIFY.json and BUILDINFO.json.
    let policy = xtask::verify::Policy::load(&common::default_policy()).unwrap();
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("BUILDINFO.json")).unwrap()).unwrap();
    for named in [&packaged["policy"], &info["verify_policy"]] {
        assert_eq!(named["name"], "x86_64-linux-gnu.2.11");
        assert_eq!(named["sha256"], policy.sha256.as_str());
    }
    // Another policy file changes the verdict, not the code: glibc 2.10
    // refuses what 2.11 accepts.
    let older = common::repo_root().join("target/e2e/x86_64-linux-gnu.2.10.toml");
    fs::write(
        &older,
        fs::read_to_string(common::default_policy())
            .unwrap()
            .replace("glibc = \"2.11\"", "glibc = \"2.10\""),
    )
    .unwrap();
    let out = xtask()
        .args(["verify", "--json", "--policy"])
        .arg(&older)
        .arg(r.bin.join("redis-server"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["policy"]["name"], "x86_64-linux-gnu.2.10");
    // Every finding is about a GLIBC_2.11 symbol (needed, or fortified).
    let findings = report["files"][0]["violations"].as_array().unwrap();
    assert!(
        findings.iter().any(|v| v["rule"] == "glibc-version"),
        "{findings:#?}"
    );
    for v in findings {
        assert_eq!(v["version"], "GLIBC_2.11", "{v}");
        assert!(
            v["rule"] == "glibc-version" || v["rule"] == "fortify",
            "{v}"
        );
    }
}

#[test]
fn the_build_keeps_linker_maps_that_name_the_objects_behind_imports() {
    let r = release(LINE);
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(r.root.join("BUILDINFO.json")).unwrap()).unwrap();
    let key = info["build_keys"]["redis"].as_str().unwrap();
    let build = common::state()
        .join("builds")
        .join(format!("redis-7.0.15-{}", &key[..16]));
    let map = xtask::verify::linkmap::LinkMap::load(&build.join("maps/redis-server.map")).unwrap();
    // Redis's own objects, optimised at link time, are named as the object
    // lld made of them; jemalloc's and OpenSSL's archive members by name.
    assert_eq!(map.referenced_by("fork"), ["redis-server.lto.o"]);
    assert!(
        map.referenced_by("clock_gettime")
            .iter()
            .any(|f| f.ends_with("libjemalloc.a(nstime.o)")),
        "{:?}",
        map.referenced_by("clock_gettime")
    );
    assert!(
        map.referenced_by("__memcpy_chk")
            .iter()
            .any(|f| f.starts_with("/build/openssl/lib/libssl.a(")),
        "{:?}",
        map.referenced_by("__memcpy_chk")
    );
    // verify finds the map next to the unstripped binary by itself, also
    // for the alias symlinks.
    let out = xtask()
        .args(["verify", "--json"])
        .arg(build.join("bin/redis-server"))
        .arg(build.join("bin/redis-check-aof"))
        .arg(build.join("bin/redis-cli"))
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    for (i, map) in ["redis-server", "redis-server", "redis-cli"]
        .iter()
        .enumerate()
    {
        let used = report["files"][i]["map"].as_str().unwrap();
        assert!(used.ends_with(&format!("maps/{map}.map")), "{used}");
    }
}

#[test]
fn packaged_server_answers_ping_over_tls_and_tcp() {
    let r = release(LINE);
    let report = xtask::smoke::smoke(
        &xtask::emulator::Runner::native(),
        &r.bin,
        &scratch("smoke-7.0"),
    )
    .unwrap();
    assert_eq!(report.tls_ping, "PONG");
    assert_eq!(report.plain_ping, "PONG");
    assert_eq!(report.server_version, "7.0.15");
}

#[test]
fn second_dist_rebuilds_nothing_and_gives_the_same_bytes() {
    let r = release(LINE);
    let before = fs::read(&r.tarball).unwrap();
    let out = xtask()
        .args(["dist", "--redis", LINE, "--out"])
        .arg(&r.out)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    // What the run did, from its record.
    let project = xtask::project::Project::discover(None).unwrap();
    let pins = project.pins().unwrap();
    let pin = pins.redis(Some(LINE)).unwrap();
    let record = xtask::dist::RunRecord::load(&project.state, pins, pin).unwrap();
    let cached: Vec<&str> = record
        .steps_in(xtask::run::StepState::Cached)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(cached, [pins.openssl.id(), pin.id()], "{record:?}");
    assert!(
        record.nothing_built(),
        "nothing is compiled again: {record:?}"
    );
    assert_eq!(fs::read(&r.tarball).unwrap(), before);
    let tarball = r.tarball.file_name().unwrap().to_string_lossy();
    assert!(
        record
            .outputs
            .iter()
            .any(|o| o.path == tarball && o.sha256 == xtask::treehash::sha256_bytes(&before)),
        "the record names the archive with its hash: {record:?}"
    );
}

/// Inside the real bwrap sandbox: no host header, only the loopback device,
/// a cleared environment.
#[test]
fn the_sandbox_really_hides_headers_and_network() {
    use xtask::sandbox::{Sandbox, SandboxKind};
    if let Err(e) = Sandbox::preflight(SandboxKind::Bwrap) {
        common::skip(
            "the_sandbox_really_hides_headers_and_network",
            &format!("{e:#}"),
        );
        return;
    }
    let sb = Sandbox::new(SandboxKind::Bwrap);
    let out = sb
        .command(&[
            "sh".into(),
            "-c".into(),
            "ls /usr/include | wc -l; cat /proc/net/dev | wc -l; env | wc -l".into(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<u32> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums[0], 0, "no host header is visible");
    assert_eq!(
        nums[1], 3,
        "only the loopback device: two header lines and lo"
    );
    assert!(nums[2] <= 3, "environment cleared: {text}");
}

#[test]
fn the_build_reads_the_lines_committed_profile_and_it_fits_the_sources() {
    common::assert_reads_its_profile(&release(LINE), "redis-7.0.15");
}
