//! The security gate on the real pins: `cargo xtask audit` leaves no open
//! high or critical CVE, the 7.0 release carries every CVE fix of Debian's
//! queue, `dist` refuses an open one unless `--allow-cve` names it, and the
//! SBOM's VEX validates against the CycloneDX 1.5 schema.

mod common;

use std::{fs, path::Path};

use common::{copy_checkout, release, repo_root, scratch, xtask};
use serde_json::Value;

fn audit_json(dir: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = xtask()
        .current_dir(dir)
        .args(["audit", "--json"])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("audit printed no JSON ({e}): {stderr}"));
    (out.status.code(), json, stderr)
}

fn findings<'a>(audit: &'a Value, redis: &str) -> &'a Vec<Value> {
    audit["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["redis"] == redis)
        .unwrap_or_else(|| panic!("no line for Redis {redis}: {audit}"))["findings"]
        .as_array()
        .unwrap()
}

#[test]
fn audit_finds_no_open_high_or_critical_cve_on_either_line() {
    let (code, audit, stderr) = audit_json(&repo_root(), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(audit["schema"], "portable-redis/audit");
    assert_eq!(audit["passed"], true);
    for redis in ["7.0.15", "8.0.6"] {
        let f = findings(&audit, redis);
        assert!(f.len() > 50, "{redis}: {} findings", f.len());
        for x in f {
            let open = x["state"] == "open";
            let serious =
                ["high", "critical", "unknown"].contains(&x["severity"].as_str().unwrap());
            assert!(
                !(open && serious),
                "{redis}: open and {}: {x}",
                x["severity"]
            );
        }
        // The lines' headline CVEs, fixed by Debian's patches.
        for cve in ["CVE-2026-81934", "CVE-2026-66373", "CVE-2026-25243"] {
            let x = f
                .iter()
                .find(|x| x["id"] == cve && x["component"] == "redis")
                .unwrap_or_else(|| panic!("{redis}: {cve} missing"));
            assert_eq!(x["state"], "patched", "{redis}: {x}");
        }
        // OpenSSL's High of September, DTLS: backported.
        let dtls = f.iter().find(|x| x["id"] == "CVE-2026-84782").unwrap();
        assert_eq!(dtls["state"], "patched", "{dtls}");
    }
}

#[test]
fn the_7_0_release_carries_every_cve_fix_of_debians_queue() {
    let (_, audit, _) = audit_json(&repo_root(), &["--redis", "7.0"]);
    let f = findings(&audit, "7.0.15");
    let pins = xtask::pins::Pins::load(&repo_root()).unwrap();
    let queue = pins.redis(Some("7.0")).unwrap().security.clone().unwrap();
    assert_eq!(queue.debian, "5:7.0.15-1~deb12u10");
    assert_eq!(queue.patches.len(), 18);
    // Every patch of the queue fixes at least one recorded CVE of 7.0.15.
    for p in queue.patches.iter().map(|p| p.name()) {
        let fixed: Vec<&str> = f
            .iter()
            .filter(|x| {
                x["state"] == "patched"
                    && x["patches"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|n| n == p))
            })
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert!(!fixed.is_empty(), "{p} fixes no CVE of the audit");
    }
    // The CVEs Debian's changelog names for deb12u2 through deb12u10.
    for cve in [
        "CVE-2024-31449",
        "CVE-2024-31227",
        "CVE-2024-31228",
        "CVE-2024-46981",
        "CVE-2024-51741",
        "CVE-2025-21605",
        "CVE-2025-27151",
        "CVE-2025-32023",
        "CVE-2025-48367",
        "CVE-2025-46817",
        "CVE-2025-46818",
        "CVE-2025-46819",
        "CVE-2025-49844",
        "CVE-2025-67733",
        "CVE-2026-21863",
        "CVE-2026-23631",
        "CVE-2026-25243",
        "CVE-2026-66373",
        "CVE-2026-81934",
        "CVE-2026-92925",
    ] {
        let x = f.iter().find(|x| x["id"] == cve).unwrap();
        assert_eq!(x["state"], "patched", "{x}");
    }
}

/// A scratch checkout whose advisories add one open, high CVE of Redis; it
/// shares the state folder, so nothing is built again.
fn checkout_with_an_open_cve(name: &str) -> std::path::PathBuf {
    // The whole checkout, profiles included: a subset would change the
    // build's inputs, and the release would be built again.
    let dir = scratch(name);
    copy_checkout(&repo_root(), &dir);
    let mut adv = fs::read_to_string(dir.join("vendor/advisories.toml")).unwrap();
    adv.push_str(
        "\n[[advisory]]\nid = \"CVE-2099-0001\"\ncomponent = \"redis\"\n\
         summary = \"A test advisory nothing fixes\"\nurl = \"https://example.invalid/CVE-2099-0001\"\n\
         ratings = [{ source = \"test\", severity = \"high\", score = 8.1 }]\n\
         affected = [\">= 7.0.0\"]\n",
    );
    fs::write(dir.join("vendor/advisories.toml"), adv).unwrap();
    dir
}

#[test]
fn dist_refuses_an_open_high_cve_unless_allowed_and_records_it() {
    // The release of this checkout, built (and cached) as usual.
    let base = release("7.0");
    let dir = checkout_with_an_open_cve("open-cve");
    let state = common::state();
    let out = dir.join("dist");
    let dist = |extra: &[&str]| {
        xtask()
            .current_dir(&dir)
            .env("PORTABLE_REDIS_STATE", &state)
            .args(["dist", "--redis", "7.0", "--out"])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap()
    };
    let (code, audit, _) = audit_json(&dir, &["--redis", "7.0"]);
    assert_eq!(code, Some(1), "the audit fails on it");
    assert_eq!(audit["passed"], false);

    let refused = dist(&[]);
    let log = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{log}");
    assert!(
        log.contains("CVE-2099-0001 (redis 7.0.15, high)") && log.contains("--allow-cve"),
        "{log}"
    );
    assert!(
        !out.exists() || fs::read_dir(&out).unwrap().next().is_none(),
        "nothing packaged"
    );

    let allowed = dist(&["--allow-cve", "CVE-2099-0001"]);
    let log = String::from_utf8_lossy(&allowed.stderr);
    assert!(allowed.status.success(), "{log}");
    let pins = xtask::pins::Pins::load(&dir).unwrap();
    let pin = pins.redis(Some("7.0")).unwrap();
    let record = xtask::dist::RunRecord::load(&state, &pins, pin).unwrap();
    assert!(
        record
            .steps_in(xtask::run::StepState::Cached)
            .any(|s| s.name == pin.id()),
        "nothing is built again: {record:?}"
    );
    let name = base
        .tarball
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace(".tar.gz", "");
    let info: Value =
        serde_json::from_slice(&fs::read(out.join(format!("{name}.buildinfo.json"))).unwrap())
            .unwrap();
    assert_eq!(
        info["security"]["allowed_cves"],
        serde_json::json!(["CVE-2099-0001"])
    );
    let bom: Value =
        serde_json::from_slice(&fs::read(out.join(format!("{name}.cdx.json"))).unwrap()).unwrap();
    let v = bom["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == "CVE-2099-0001")
        .unwrap();
    assert_eq!(v["analysis"]["state"], "exploitable");
    assert!(
        v["analysis"]["detail"]
            .as_str()
            .unwrap()
            .contains("--allow-cve"),
        "{v}"
    );

    // A stale or mistyped id is an error, not a silent pass.
    let stale = dist(&["--allow-cve", "CVE-2099-0002"]);
    assert!(!stale.status.success());
}

#[test]
fn the_sbom_vex_validates_against_cyclonedx_1_5_and_matches_the_audit() {
    let r = release("7.0");
    let sbom_path = r.root.join("share/doc/sbom.cdx.json");
    let errors = common::cyclonedx_errors(&sbom_path);
    assert!(errors.is_empty(), "{errors}");

    let bom: Value = serde_json::from_slice(&fs::read(&sbom_path).unwrap()).unwrap();
    let (_, audit, _) = audit_json(&repo_root(), &["--redis", "7.0"]);
    let f = findings(&audit, "7.0.15");
    let vex = bom["vulnerabilities"].as_array().unwrap();
    assert_eq!(vex.len(), f.len(), "one VEX entry per finding");
    for x in f {
        let reference = format!(
            "{}@{}",
            x["component"].as_str().unwrap(),
            x["version"].as_str().unwrap()
        );
        let v = vex
            .iter()
            .find(|v| v["id"] == x["id"] && v["affects"][0]["ref"] == reference.as_str())
            .unwrap_or_else(|| panic!("{} of {reference} not in the VEX", x["id"]));
        // CycloneDX 1.5, `vulnerability.analysis.state`: `resolved` (the
        // version carries the fix), `resolved_with_pedigree` (resolved by
        // changes recorded in the component's pedigree: our patches),
        // `not_affected`, `exploitable` (nothing resolves it).
        let want = match x["state"].as_str().unwrap() {
            "patched" => "resolved_with_pedigree",
            "fixed_upstream" | "fixed_before" => "resolved",
            "not_affected" | "not_affected_version" => "not_affected",
            "open" => "exploitable",
            other => panic!("an audit state this test does not know: {other}"),
        };
        assert_eq!(v["analysis"]["state"], want, "{v}");
        // Every ref names a component of the SBOM.
        assert!(
            bom["components"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["bom-ref"] == reference.as_str()),
            "{reference}"
        );
    }
    // Debian's CVE patches are backports that resolve their CVEs.
    let redis = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "redis")
        .unwrap();
    let tls = redis["pedigree"]["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["diff"]["url"]
                .as_str()
                .unwrap()
                .ends_with("debian/patches/CVE-2026-81934.patch")
        })
        .unwrap();
    assert_eq!(tls["type"], "backport");
    assert_eq!(tls["resolves"][0]["id"], "CVE-2026-81934");
}
