//! Unit tests of the records and the release folder, without a compiler.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{publish::*, records::*, stages, *};
use crate::tarball::{Level, TarTree};
use crate::{
    audit,
    patch::{Patch, Series},
    pins::Pins,
    toolchain::Toolchain,
};

mod archive;

#[test]
fn sha256sums_lists_the_release_files_sorted_and_only_them() {
    let d = tempfile::tempdir().unwrap();
    let files = [
        ("portable-redis-8.0.6-x86_64-linux-glibc2.11.tar.gz", "b"),
        ("portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz", "a"),
        ("portable-redis-7.0.15-x86_64-linux-glibc2.11.cdx.json", "c"),
        ("notes.txt", "not a release file"),
    ];
    for (n, body) in files {
        fs::write(d.path().join(n), body).unwrap();
    }
    fs::create_dir(d.path().join("portable-redis-folder")).unwrap();
    write_sha256sums(d.path()).unwrap();
    let sums = fs::read_to_string(d.path().join("SHA256SUMS")).unwrap();
    // sha256("c"), sha256("a"), sha256("b"), in name order.
    assert_eq!(
        sums,
        "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6  \
         portable-redis-7.0.15-x86_64-linux-glibc2.11.cdx.json\n\
         ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  \
         portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz\n\
         3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  \
         portable-redis-8.0.6-x86_64-linux-glibc2.11.tar.gz\n"
    );
    // A second run over the same files leaves the file as it is.
    let before = fs::metadata(d.path().join("SHA256SUMS"))
        .unwrap()
        .modified()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_sha256sums(d.path()).unwrap();
    let after = fs::metadata(d.path().join("SHA256SUMS"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
}

#[test]
fn licences_come_from_both_builds_and_zig_and_none_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let tree = |dir: &str, files: &[&str]| {
        for f in files {
            let p = d.path().join(dir).join("licenses").join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, f.as_bytes()).unwrap();
        }
        d.path().join(dir)
    };
    let redis = BuiltRedis {
        key: "r".into(),
        dir: tree("redis", &["redis/COPYING", "redis/deps/lua/COPYRIGHT"]),
        bin: d.path().join("redis/bin"),
        cached: false,
    };
    let openssl = BuiltOpenssl {
        key: "o".into(),
        dir: tree("openssl", &["openssl/LICENSE.txt"]),
        prefix: d.path().join("openssl/prefix"),
        cached: false,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pins = Pins::load(&root).unwrap();
    let zig = d.path().join("zig");
    fs::create_dir_all(&zig).unwrap();
    fs::write(zig.join("LICENSE"), "MIT").unwrap();
    let toolchain = Toolchain {
        dir: zig,
        version: "0.17.1".into(),
        identity: "wheel".into(),
        pin: pins.toolchain.clone(),
        target: pins.targets[0].clone(),
    };
    let names: Vec<String> = licenses(&toolchain, &redis, &openssl)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "redis/COPYING",
            "redis/deps/lua/COPYRIGHT",
            "openssl/LICENSE.txt",
            "zig-0.17.1/LICENSE"
        ]
    );
    let empty = BuiltRedis {
        dir: d.path().join("nothing"),
        ..redis
    };
    let no_openssl = BuiltOpenssl {
        dir: d.path().join("nothing"),
        ..openssl
    };
    let bare = Toolchain {
        dir: d.path().join("nothing"),
        ..toolchain
    };
    let e = licenses(&bare, &empty, &no_openssl)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no licence files"), "{e}");
}

/// Ours first, from the series folder; then the queue's, named by its
/// archive; each with the CVEs the audit says it fixes.
#[test]
fn patches_are_recorded_with_their_origin_and_the_cves_they_fix() {
    use crate::advisories::{Finding, Severity, State};
    use crate::patch::{parse, Queue};
    let body = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
    let root = PathBuf::from("/repo");
    let project = Project::new(root.clone(), root.join("target/portable"));
    let series = Series {
        dir: root.join("patches/redis/7.0"),
        patches: vec![parse("0001-memcpy.patch", body).unwrap()],
        security: Some(Queue {
            archive: "redis_7.0.15-1~deb12u10.debian.tar.xz".into(),
            debian: "5:7.0.15-1~deb12u10".into(),
            folder: "debian/patches".into(),
            patches: vec![Patch {
                left_out: vec!["tests/unit/x.tcl".into()],
                ..parse("CVE-2025-1.patch", body).unwrap()
            }],
        }),
    };
    let finding = |id: &str, component: &str, state: State| Finding {
        id: id.into(),
        component: component.into(),
        version: "7.0.15".into(),
        severity: Severity::High,
        score: None,
        summary: String::new(),
        url: String::new(),
        published: None,
        ratings: Vec::new(),
        state,
        allowed: false,
    };
    let patched = |p: &str| State::Patched {
        patches: vec![p.into()],
    };
    let audit = audit::LineAudit {
        advisories_sha256: String::new(),
        redis: "7.0.15".into(),
        openssl: "3.5.7".into(),
        components: Vec::new(),
        findings: vec![
            finding("CVE-2025-1", "redis", patched("CVE-2025-1.patch")),
            finding("CVE-2025-2", "redis", patched("CVE-2025-1.patch")),
            // Another component's patch of the same name is not this one's.
            finding("CVE-2025-3", "openssl", patched("0001-memcpy.patch")),
            finding("CVE-2025-4", "redis", State::Open),
        ],
    };
    let infos = patch_infos(&project, "redis", &series, &audit);
    let got: Vec<(&str, &str, Vec<String>, Vec<String>)> = infos
        .iter()
        .map(|p| {
            (
                p.series.as_str(),
                p.name.as_str(),
                p.cves.clone(),
                p.left_out.clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("patches/redis/7.0", "0001-memcpy.patch", vec![], vec![]),
            (
                "redis_7.0.15-1~deb12u10.debian.tar.xz",
                "CVE-2025-1.patch",
                vec!["CVE-2025-1".to_string(), "CVE-2025-2".to_string()],
                vec!["tests/unit/x.tcl".to_string()]
            ),
        ]
    );
    assert!(infos
        .iter()
        .all(|p| p.component == "redis" && p.sha256.len() == 64));
    let refs = sbom_patches(&project, "redis", &series, &audit);
    let got: Vec<(&str, Vec<String>)> = refs
        .iter()
        .map(|r| (r.url.as_str(), r.resolves.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("patches/redis/7.0/0001-memcpy.patch", vec![]),
            (
                "redis_7.0.15-1~deb12u10.debian.tar.xz#debian/patches/CVE-2025-1.patch",
                vec!["CVE-2025-1".to_string(), "CVE-2025-2".to_string()]
            ),
        ]
    );
    assert!(refs.iter().all(|r| r.text == body));
}

#[test]
fn the_debug_archive_is_laid_out_as_gdb_looks_for_build_ids() {
    assert_eq!(
        debug_path("4ad3f2c1e0b9a8877665544332211aabbccddeef"),
        ".build-id/4a/d3f2c1e0b9a8877665544332211aabbccddeef.debug"
    );
}

#[test]
fn the_release_name_carries_the_version_and_the_glibc_floor() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pins = Pins::load(&root).unwrap();
    let toolchain = Toolchain {
        dir: PathBuf::from("/zig"),
        version: "0.17.1".into(),
        identity: "wheel".into(),
        pin: pins.toolchain.clone(),
        target: pins.targets[0].clone(),
    };
    let mut redis = pins.redis[0].clone();
    redis.version = "7.0.15".into();
    assert_eq!(
        release_name(&redis, &toolchain.target),
        "portable-redis-7.0.15-x86_64-linux-glibc2.11"
    );
}

#[test]
fn an_open_cve_is_refused_with_what_to_do() {
    use crate::advisories::{Finding, Severity, State};
    let finding = |id: &str, component: &str, version: &str, severity: Severity| Finding {
        id: id.into(),
        component: component.into(),
        version: version.into(),
        severity,
        score: None,
        summary: String::new(),
        url: String::new(),
        published: None,
        ratings: Vec::new(),
        state: State::Open,
        allowed: false,
    };
    let a = finding("CVE-2026-1", "redis", "7.0.15", Severity::Critical);
    let b = finding("CVE-2026-2", "openssl", "3.5.7", Severity::High);
    assert_eq!(
        stages::refusal(&[&a, &b]),
        "open high or critical CVEs, nothing was built: CVE-2026-1 (redis 7.0.15, critical), \
         CVE-2026-2 (openssl 3.5.7, high); fix them (a newer pin, a patch, or a reviewed \
         not-affected statement in vendor/advisories.toml), or name each with --allow-cve CVE \
         to release anyway (recorded in BUILDINFO.json and the SBOM). `cargo xtask audit` shows \
         the table."
    );
}

#[test]
fn buildinfo_records_every_input_and_output() {
    use crate::{
        build::{BuildFlags, BuiltOpenssl, BuiltRedis},
        sandbox::SandboxKind,
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = Project::new(root.clone(), PathBuf::from("/state"));
    let pins = Pins::load(&root).unwrap();
    let redis = pins.redis[0].clone();
    let toolchain = Toolchain {
        dir: PathBuf::from("/zig"),
        version: pins.toolchain.zig_version.clone(),
        identity: "wheel sha256:1111".into(),
        pin: pins.toolchain.clone(),
        target: pins.targets[0].clone(),
    };
    let flags = BuildFlags::new(&pins.targets[0], &[], SandboxKind::Bwrap, 1_704_758_400, 2);
    let series = |dir: &str| Series {
        dir: root.join(dir),
        patches: vec![crate::patch::parse(
            "0001-x.patch",
            "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n",
        )
        .unwrap()],
        security: None,
    };
    let (redis_series, openssl_series) =
        (series("patches/redis/7.0"), series("patches/openssl/3.5"));
    let audit = audit::LineAudit {
        advisories_sha256: "ad".repeat(32),
        redis: redis.version.clone(),
        openssl: pins.openssl.version.clone(),
        components: Vec::new(),
        findings: Vec::new(),
    };
    let line = stages::Line {
        project: &project,
        pins: &pins,
        redis: &redis,
        series: &redis_series,
        openssl_series: &openssl_series,
        audit: &audit,
        toolchain: &toolchain,
        flags: &flags,
    };
    let policy = crate::verify::load_policy(&project, None).unwrap();
    let openssl = BuiltOpenssl {
        key: "0".repeat(64),
        dir: PathBuf::from("/state/builds/o"),
        prefix: PathBuf::from("/state/builds/o/prefix"),
        cached: true,
    };
    let built = BuiltRedis {
        key: "1".repeat(64),
        dir: PathBuf::from("/state/builds/r"),
        bin: PathBuf::from("/state/builds/r/bin"),
        cached: false,
    };
    let output = |path: &str| OutputInfo {
        path: path.into(),
        sha256: "2".repeat(64),
        build_id: None,
    };
    let info = build_info(
        &line,
        "portable-redis-x",
        &openssl,
        &built,
        &policy,
        vec![output("bin/redis-server"), output("README")],
        vec![output(".build-id/aa/b.debug")],
    );
    let json: serde_json::Value = serde_json::from_slice(&json_bytes(&info).unwrap()).unwrap();
    assert_eq!(json["schema"], "portable-redis/buildinfo");
    assert_eq!(json["schema_version"], 3);
    assert_eq!(json["release"], "portable-redis-x");
    assert_eq!(json["source_date_epoch"], 1_704_758_400);
    let sources: Vec<(&str, &str)> = json["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["version"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sources,
        [
            ("openssl", pins.openssl.version.as_str()),
            ("redis", redis.version.as_str())
        ]
    );
    let patches: Vec<(&str, &str)> = json["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["component"].as_str().unwrap(),
                p["series"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        patches,
        [
            ("openssl", "patches/openssl/3.5"),
            ("redis", "patches/redis/7.0")
        ]
    );
    assert_eq!(json["security"]["advisories_sha256"], "ad".repeat(32));
    assert_eq!(json["toolchain"]["target"], pins.targets[0].zig.as_str());
    assert_eq!(json["toolchain"]["identity"], "wheel sha256:1111");
    assert_eq!(json["sandbox"], "bwrap");
    assert_eq!(json["build_keys"]["openssl"], "0".repeat(64));
    assert_eq!(json["build_keys"]["redis"], "1".repeat(64));
    assert_eq!(json["verify_policy"]["name"], policy.name.as_str());
    assert_eq!(json["verify_policy"]["sha256"], policy.sha256.as_str());
    assert_eq!(json["outputs"][0]["path"], "bin/redis-server");
    assert_eq!(json["debug"][0]["path"], ".build-id/aa/b.debug");
    assert!(json["flags"]["redis_make"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m == "BUILD_TLS=yes"));
}

/// The default target's policy is the one `cargo xtask verify` and
/// `verify-release` check against.
#[test]
fn the_default_target_uses_the_default_policy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let project = Project::new(root.clone(), PathBuf::from("/state"));
    let pins = Pins::load(&root).unwrap();
    let policy = crate::verify::load_policy(&project, None).unwrap();
    assert_eq!(
        pins.target(None).unwrap().policy,
        format!("policy/{}.toml", policy.name)
    );
    assert!(
        format!("{:#}", pins.target(Some("mips-unknown")).unwrap_err())
            .contains("give one of them to --target")
    );
}
