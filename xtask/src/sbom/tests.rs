use super::*;

/// A finding of CVE-1 in redis 7.0.15 in `state`, rated high by the vendor.
fn finding(state: State, allowed: bool) -> Finding {
    Finding {
        id: "CVE-1".into(),
        component: "redis".into(),
        version: "7.0.15".into(),
        severity: crate::advisories::Severity::High,
        score: Some(7.5),
        summary: "Lua overflow".into(),
        url: "https://example.invalid/CVE-1".into(),
        published: Some("2026-01-02".into()),
        ratings: vec![crate::advisories::Rating {
            source: "GitHub".into(),
            severity: None,
            score: Some(7.5),
            vector: Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H".into()),
        }],
        state,
        allowed,
    }
}

/// Each audit state as CycloneDX 1.5's `analysis.state` (resolved,
/// resolved_with_pedigree, not_affected with a justification,
/// exploitable), written out here rather than derived from the code.
#[test]
fn each_audit_state_is_the_cyclonedx_analysis_state_the_spec_names() {
    use crate::advisories::{Justification, NotAffected};
    let cases = [
        (
            State::FixedUpstream {
                fixed_in: "7.2.11".into(),
            },
            false,
            (
                "resolved",
                None,
                "fixed upstream in 7.2.11; the release has redis 7.0.15",
            ),
        ),
        (
            State::FixedBefore {
                line: "7.0".into(),
                fixed_in: "6.2.9".into(),
            },
            false,
            (
                "resolved",
                None,
                "fixed upstream in 6.2.9, before the 7.0 line; the release has redis 7.0.15",
            ),
        ),
        (
            State::NotAffectedVersion {
                detail: "affects 7.2.0 and later".into(),
            },
            false,
            (
                "not_affected",
                Some("code_not_present"),
                "affects 7.2.0 and later; the release has redis 7.0.15",
            ),
        ),
        (
            State::Patched {
                patches: vec!["CVE-1.patch".into()],
            },
            false,
            (
                "resolved_with_pedigree",
                None,
                "fixed by CVE-1.patch (the component's pedigree lists the patch)",
            ),
        ),
        (
            State::NotAffected(NotAffected {
                justification: Justification::RequiresConfiguration,
                detail: "needs enable-debug-command".into(),
                build_option: None,
                absent_symbols: Vec::new(),
            }),
            false,
            (
                "not_affected",
                Some("requires_configuration"),
                "needs enable-debug-command",
            ),
        ),
        (
            State::Open,
            true,
            (
                "exploitable",
                None,
                "open: no fix in the release; released anyway by --allow-cve CVE-1 (severity high)",
            ),
        ),
    ];
    for (state, allowed, (want_state, want_justification, want_detail)) in cases {
        let v = vulnerability(&finding(state, allowed));
        assert_eq!(v.analysis.state, want_state);
        assert_eq!(v.analysis.justification, want_justification);
        assert_eq!(v.analysis.detail, want_detail);
        assert_eq!(v.bom_ref, "vex:redis@7.0.15:CVE-1");
        assert_eq!(v.affects[0].reference, "redis@7.0.15");
        assert_eq!(v.ratings[0].method, "CVSSv31");
        assert_eq!(v.ratings[0].severity, "high");
        assert_eq!(v.published.as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(
            v.source.url.as_deref(),
            Some("https://nvd.nist.gov/vuln/detail/CVE-1")
        );
    }
}

fn sample() -> Vec<SourceComponent> {
    let leaf = |name: &str, license: &str| SourceComponent {
        name: name.into(),
        version: "1.0".into(),
        license: license.into(),
        tree: format!("sha256:{}", "ab".repeat(32)),
        purl: None,
        note: None,
        patches: Vec::new(),
        bundled: Vec::new(),
    };
    let mut redis = leaf("redis", "BSD-3-Clause");
    redis.version = "7.0.15".into();
    redis.patches = vec![
        PatchRef {
            url: "patches/redis/7.0/0001-x.patch".into(),
            text: "--- a/x\n+++ b/x\n".into(),
            resolves: Vec::new(),
        },
        PatchRef {
            url: "redis_7.0.15-1.debian.tar.xz#debian/patches/CVE-1.patch".into(),
            text: "--- a/y\n+++ b/y\n".into(),
            resolves: vec!["CVE-2025-1".into()],
        },
    ];
    redis.bundled = vec![leaf("jemalloc", "BSD-2-Clause"), leaf("lua", "MIT")];
    vec![leaf("openssl", "Apache-2.0"), redis]
}

#[test]
fn shape_is_cyclonedx_1_5() {
    let b = bom(
        "portable-redis-7.0.15",
        "7.0.15",
        "x86_64 Linux, glibc 2.11 and later",
        1_704_758_400,
        &sample(),
        &[],
    );
    let v = serde_json::to_value(&b).unwrap();
    assert_eq!(v["bomFormat"], "CycloneDX");
    assert_eq!(v["specVersion"], "1.5");
    assert_eq!(v["version"], 1);
    assert!(v["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));
    assert_eq!(
        v["serialNumber"].as_str().unwrap().len(),
        "urn:uuid:".len() + 36
    );
    assert_eq!(v["metadata"]["timestamp"], "2024-01-09T00:00:00Z");
    assert_eq!(v["metadata"]["component"]["type"], "application");
    let comps = v["components"].as_array().unwrap();
    assert_eq!(comps.len(), 4);
    for c in comps {
        assert_eq!(c["type"], "library");
        assert!(c["bom-ref"].is_string() && c["name"].is_string() && c["version"].is_string());
        assert_eq!(c["hashes"][0]["alg"], "SHA-256");
        assert_eq!(c["hashes"][0]["content"].as_str().unwrap().len(), 64);
        assert!(c["licenses"][0]["expression"].is_string());
    }
    let redis = comps.iter().find(|c| c["name"] == "redis").unwrap();
    assert_eq!(redis["pedigree"]["patches"][0]["type"], "unofficial");
    let backport = &redis["pedigree"]["patches"][1];
    assert_eq!(backport["type"], "backport");
    assert_eq!(backport["resolves"][0]["type"], "security");
    assert_eq!(backport["resolves"][0]["id"], "CVE-2025-1");
    assert_eq!(
        redis["pedigree"]["patches"][0]["diff"]["text"]["contentType"],
        "text/x-diff"
    );
    let deps = v["dependencies"].as_array().unwrap();
    let redis_dep = deps.iter().find(|d| d["ref"] == "redis@7.0.15").unwrap();
    assert_eq!(redis_dep["dependsOn"].as_array().unwrap().len(), 2);
    assert_eq!(deps[0]["ref"], "portable-redis@7.0.15");
}

#[test]
fn deterministic_and_content_addressed() {
    let a = serde_json::to_string(&bom("r", "1", "x86_64 Linux", 0, &sample(), &[])).unwrap();
    assert_eq!(
        a,
        serde_json::to_string(&bom("r", "1", "x86_64 Linux", 0, &sample(), &[])).unwrap()
    );
    let mut other = sample();
    other[0].version = "3.5.6".into();
    let b = bom("r", "1", "x86_64 Linux", 0, &other, &[]);
    assert_ne!(
        serde_json::to_value(bom("r", "1", "x86_64 Linux", 0, &sample(), &[])).unwrap()
            ["serialNumber"],
        serde_json::to_value(b).unwrap()["serialNumber"]
    );
}

#[test]
fn timestamps() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_868_800 + 3661), "2000-03-01T01:01:01Z");
    assert_eq!(rfc3339(1_709_164_800), "2024-02-29T00:00:00Z");
}
