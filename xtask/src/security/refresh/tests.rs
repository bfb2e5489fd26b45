use super::*;

#[test]
fn takes_new_cve_fixes_and_never_packaging_or_tests() {
    let fix = "Fixes CVE-2026-1002\n--- a/src/x.c\n+++ b/src/x.c\n@@ -1 +1 @@\n-a\n+b\n";
    let test_only = "CVE-2026-1003\n--- a/test/t.c\n+++ b/test/t.c\n@@ -1 +1 @@\n-a\n+b\n";
    let packaging = "--- a/debian/x\n+++ b/debian/x\n@@ -1 +1 @@\n-a\n+b\n";
    let members: std::collections::BTreeMap<String, Vec<u8>> = [
        ("CVE-2026-1001.patch", fix),
        ("fix-the-thing.patch", fix),
        ("Add-test-for-CVE-2026-1003.patch", test_only),
        ("debian-packaging/0001-defaults.patch", packaging),
        ("0004-USE_SYSTEM_JEMALLOC.patch", packaging),
    ]
    .into_iter()
    .map(|(n, b)| (format!("{DEBIAN_PATCHES}/{n}"), b.as_bytes().to_vec()))
    .collect();
    let series = "debian-packaging/0001-defaults.patch\n0004-USE_SYSTEM_JEMALLOC.patch\n\
                      CVE-2026-1001.patch\nfix-the-thing.patch\nAdd-test-for-CVE-2026-1003.patch\n";
    let pinned = vec!["CVE-2026-1001.patch".to_string(), "gone.patch".to_string()];
    let c = classify(&pinned, series, &members).unwrap();
    assert_eq!(c.patches, ["CVE-2026-1001.patch", "fix-the-thing.patch"]);
    assert_eq!(
        c.added,
        [(
            "fix-the-thing.patch".to_string(),
            vec!["CVE-2026-1002".to_string()]
        )]
    );
    assert_eq!(c.dropped, ["gone.patch"]);
    let skipped: Vec<&str> = c.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "debian-packaging/0001-defaults.patch",
            "0004-USE_SYSTEM_JEMALLOC.patch",
            "Add-test-for-CVE-2026-1003.patch"
        ]
    );
}

#[test]
fn names_cve_ids_once() {
    assert_eq!(
        cve_ids("0009-CVE-2026-21863.patch\nFixes CVE-2026-21863 and CVE-2025-1234."),
        ["CVE-2026-21863", "CVE-2025-1234"]
    );
    assert!(cve_ids("CVE-26-1 and CVE-abcd").is_empty());
}
