use super::*;

fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, body) in files {
        let path = d.path().join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    }
    d
}

const SRC: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\n";
const PATCH: &str =
    "--- a/f.c\n+++ b/f.c\n@@ -3,3 +3,4 @@\n three\n four\n+four and a half\n five\n";

#[test]
fn applies_cleanly() {
    let d = tree(&[("f.c", SRC)]);
    let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
    assert_eq!(r.status(), "applies cleanly");
    assert_eq!(
        fs::read_to_string(d.path().join("f.c")).unwrap(),
        "one\ntwo\nthree\nfour\nfour and a half\nfive\nsix\nseven\n"
    );
}

#[test]
fn applies_with_offset() {
    let d = tree(&[("f.c", &format!("zero\nzero\n{SRC}"))]);
    let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
    assert_eq!(r.status(), "applies with offset");
    assert_eq!(r.files[0].hunks[0].outcome, HunkOutcome::Offset(2));
    assert!(fs::read_to_string(d.path().join("f.c"))
        .unwrap()
        .contains("four\nfour and a half\nfive"));
}

#[test]
fn applies_with_fuzz() {
    let d = tree(&[("f.c", "one\ntwo\nTHREE\nfour\nfive\nsix\n")]);
    let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), true).unwrap();
    assert_eq!(r.status(), "applies with fuzz");
    assert!(matches!(
        r.files[0].hunks[0].outcome,
        HunkOutcome::Fuzz { fuzz: 1, .. }
    ));
}

#[test]
fn failure_names_file_hunk_and_shows_both_sides() {
    let d = tree(&[("f.c", "one\ntwo\nthree\nFOUR\nfive\n")]);
    let r = apply_patch(d.path(), &parse("0001-x.patch", PATCH).unwrap(), false).unwrap();
    assert!(r.failed());
    let text = r.to_string();
    assert!(text.contains("0001-x.patch: fails"), "{text}");
    assert!(
        text.contains("f.c hunk #1 @@ -3,3 +3,4 @@ (patch line 3): FAILED"),
        "{text}"
    );
    assert!(text.contains("| four") && text.contains("| FOUR"), "{text}");
}

#[test]
fn series_failure_leaves_no_half_patched_tree() {
    let pristine = tree(&[("f.c", SRC), ("g.c", "alpha\n")]);
    let series_dir = tree(&[
        ("series", "# order matters\n0001-ok.patch\n0002-bad.patch\n"),
        ("0001-ok.patch", PATCH),
        (
            "0002-bad.patch",
            "--- a/g.c\n+++ b/g.c\n@@ -1 +1 @@\n-beta\n+gamma\n",
        ),
    ]);
    let series = Series::load(series_dir.path()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("patched");
    let err = format!(
        "{:#}",
        apply_series(pristine.path(), &series, &dest).unwrap_err()
    );
    assert!(
        err.contains("0002-bad.patch") && err.contains("g.c hunk #1"),
        "{err}"
    );
    assert!(!dest.exists());
    assert_eq!(
        fs::read_dir(out.path()).unwrap().count(),
        0,
        "no staging left"
    );
    assert_eq!(
        fs::read_to_string(pristine.path().join("f.c")).unwrap(),
        SRC,
        "pristine untouched"
    );
}

#[test]
fn creates_files_and_handles_missing_newline() {
    let d = tree(&[("h.txt", "a\nb")]);
    let p = "--- /dev/null\n+++ b/new/file.h\n@@ -0,0 +1,2 @@\n+x\n+y\n--- a/h.txt\n+++ b/h.txt\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n";
    let r = apply_patch(d.path(), &parse("p", p).unwrap(), true).unwrap();
    assert!(!r.failed(), "{r}");
    assert_eq!(
        fs::read_to_string(d.path().join("new/file.h")).unwrap(),
        "x\ny\n"
    );
    assert_eq!(
        fs::read_to_string(d.path().join("h.txt")).unwrap(),
        "a\nc\n"
    );
}

#[test]
fn missing_file_and_bad_syntax_are_reported() {
    let d = tree(&[]);
    let r = apply_patch(d.path(), &parse("p", PATCH).unwrap(), false).unwrap();
    assert!(r.to_string().contains("missing"), "{r}");
    assert!(parse("p", "just text\n").is_err());
    assert!(
        parse("p", "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n").is_err(),
        "cut-short hunk"
    );
}

#[test]
fn patch_headers_name_their_cves() {
    let text =
        "Subject: x\n\nCVE: CVE-2026-1, CVE-2026-2\n---\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
    assert_eq!(parse("p", text).unwrap().cves, ["CVE-2026-1", "CVE-2026-2"]);
    let kind = "Subject: y\nKind: portability\n\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
    assert_eq!(
        parse("p", kind).unwrap().kind.as_deref(),
        Some("portability")
    );
    assert!(parse("p", PATCH).unwrap().cves.is_empty());
}

#[test]
fn deleted_files_are_removed_only_when_writing() {
    let d = tree(&[("gone.c", "a\nb\n"), ("kept.c", "x\n")]);
    let p = parse(
        "p",
        "--- a/gone.c\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n",
    )
    .unwrap();
    assert_eq!(p.files[0].new, None);
    let rehearsal = apply_patch(d.path(), &p, false).unwrap();
    assert_eq!(rehearsal.status(), "applies cleanly");
    assert!(
        d.path().join("gone.c").is_file(),
        "a rehearsal changes nothing"
    );
    apply_patch(d.path(), &p, true).unwrap();
    assert!(!d.path().join("gone.c").exists());
    assert!(d.path().join("kept.c").is_file());
    // Deleting a file whose text differs fails and leaves it.
    let d = tree(&[("gone.c", "a\nchanged\n")]);
    let r = apply_patch(d.path(), &p, true).unwrap();
    assert_ne!(r.status(), "applies cleanly");
    assert!(d.path().join("gone.c").is_file());
}

fn series(patches: &[(&str, &str)], queue: &[(&str, &str, &[&str])]) -> Series {
    Series {
        dir: PathBuf::from("patches/redis/7.0"),
        patches: patches
            .iter()
            .map(|(name, text)| parse(name, text).unwrap())
            .collect(),
        security: (!queue.is_empty()).then(|| Queue {
            archive: "redis_7.0.15-1~deb12u10.debian.tar.xz".into(),
            debian: "5:7.0.15-1~deb12u10".into(),
            folder: "debian/patches".into(),
            patches: queue
                .iter()
                .map(|(name, text, without)| Patch {
                    left_out: without.iter().map(|w| w.to_string()).collect(),
                    ..parse(name, text).unwrap()
                })
                .collect(),
        }),
    }
}

fn with_kind(kind: &str) -> String {
    format!("Subject: x\nKind: {kind}\n\n{PATCH}")
}

/// Upstream as released: the portability patches only, in series
/// order, no fix of ours and no security queue.
#[test]
fn portability_only_keeps_the_portability_patches_and_drops_the_queue() {
    let (port1, port2, fix) = (
        with_kind("portability"),
        with_kind("portability"),
        with_kind("fix"),
    );
    let s = series(
        &[
            ("0001-memcpy.patch", &port1),
            ("0002-loader.patch", &fix),
            ("0003-plain.patch", PATCH),
            ("0004-glibc.patch", &port2),
        ],
        &[("CVE-2025-1.patch", PATCH, &[])],
    );
    let up = s.portability_only();
    let names: Vec<&str> = up.patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["0001-memcpy.patch", "0004-glibc.patch"]);
    assert!(up.security.is_none());
    assert_eq!(up.dir, s.dir);
}

/// The cache key's view of a series: every patch by name and content,
/// queue patches named with their archive and what is left out of them.
#[test]
fn the_fingerprint_changes_with_every_patch_and_nothing_else() {
    let other = PATCH.replace("four and a half", "four and three quarters");
    let base = series(&[("0001.patch", PATCH)], &[("CVE-1.patch", PATCH, &[])]);
    let fp = base.fingerprint();
    let sha = parse("p", PATCH).unwrap().sha256;
    assert_eq!(
        fp,
        [
            ("0001.patch".to_string(), sha.clone()),
            (
                "redis_7.0.15-1~deb12u10.debian.tar.xz/CVE-1.patch".to_string(),
                sha.clone()
            ),
        ]
    );
    let changes = [
        series(&[("0001.patch", &other)], &[("CVE-1.patch", PATCH, &[])]),
        series(&[("0002.patch", PATCH)], &[("CVE-1.patch", PATCH, &[])]),
        series(&[("0001.patch", PATCH)], &[("CVE-1.patch", &other, &[])]),
        series(
            &[("0001.patch", PATCH)],
            &[("CVE-1.patch", PATCH, &["tests/x.tcl"])],
        ),
        series(&[("0001.patch", PATCH)], &[]),
    ];
    for changed in changes {
        assert_ne!(changed.fingerprint(), fp);
    }
    // The folder it was read from is not part of it.
    let moved = Series {
        dir: PathBuf::from("/elsewhere"),
        ..base.clone()
    };
    assert_eq!(moved.fingerprint(), fp);
}

#[test]
fn refuses_paths_outside_the_tree() {
    let d = tree(&[]);
    let p = parse("p", "--- a/../x\n+++ b/../x\n@@ -0,0 +1 @@\n+x\n").unwrap();
    assert!(apply_patch(d.path(), &p, true).is_err());
}

fn target(zig: &str) -> Target {
    Target {
        name: zig.into(),
        zig: zig.into(),
        ..Default::default()
    }
}

/// `Only-for:` keeps a patch from the targets that lack one of its words: the
/// memcpy pin is for x86_64 glibc only, a glibc compatibility patch for every
/// glibc target, a patch without the header for all.
#[test]
fn a_series_for_a_target_keeps_the_patches_it_is_for() {
    let header = |only: &str| format!("Subject: x\nOnly-for: {only}\n\n{PATCH}");
    let (pin, compat) = (header("x86_64 glibc"), header("glibc"));
    let s = series(
        &[("1-pin", &pin), ("2-compat", &compat), ("3-all", PATCH)],
        &[],
    );
    let names = |t: &str| -> Vec<String> {
        s.for_target(&target(t))
            .patches
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(
        names("x86_64-linux-gnu.2.11"),
        ["1-pin", "2-compat", "3-all"]
    );
    assert_eq!(names("aarch64-linux-gnu.2.17"), ["2-compat", "3-all"]);
    assert_eq!(names("x86_64-linux-musl"), ["3-all"]);
}

#[test]
fn an_only_for_word_that_names_nothing_is_refused() {
    let e = parse("0001-x.patch", &format!("Only-for: x86_64 glbc\n\n{PATCH}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("0001-x.patch") && e.contains("`Only-for: glbc`"),
        "{e}"
    );
    let e = parse(
        "0001-x.patch",
        &format!("Only-for: x86_64 aarch64\n\n{PATCH}"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("names x86_64 and aarch64 at once"), "{e}");
}
