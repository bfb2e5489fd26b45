use super::*;

/// A `.debian.tar.xz`-like archive holding `files`.
fn queue_archive(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    let path = dir.join("pkg_1.0-1.debian.tar.xz");
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
    std::io::Write::write_all(&mut xz, &raw).unwrap();
    std::fs::write(&path, xz.finish().unwrap()).unwrap();
    path
}

const FIX: &str = "--- a/f.c\n+++ b/f.c\n@@ -1 +1 @@\n-bug\n+fix\n";

#[test]
fn reads_only_the_named_patches_in_the_pins_order() {
    let d = tempfile::tempdir().unwrap();
    let archive = queue_archive(
        d.path(),
        &[
            (
                "debian/patches/series",
                "packaging.patch\nCVE-1.patch\nCVE-2.patch\n",
            ),
            ("debian/patches/packaging.patch", FIX),
            ("debian/patches/CVE-1.patch", FIX),
            ("debian/patches/CVE-2.patch", FIX),
            ("debian/changelog", "pkg (1.0-1) unstable\n"),
        ],
    );
    let sec = SecurityPin {
        debian: "1.0-1".into(),
        archive: "pkg_1.0-1.debian.tar.xz".into(),
        sha256: treehash::sha256_file(&archive).unwrap(),
        patches: vec!["CVE-2.patch".into(), "CVE-1.patch".into()],
    };
    let q = read_queue(&archive, &sec).unwrap();
    let names: Vec<&str> = q.patches.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["CVE-2.patch", "CVE-1.patch"]);
    assert_eq!(
        q.location("CVE-1.patch"),
        "pkg_1.0-1.debian.tar.xz: debian/patches/CVE-1.patch"
    );
}

#[test]
fn leaves_out_the_named_test_files_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    let with_test = "CVE-2026-1\n--- a/src/x.c\n+++ b/src/x.c\n@@ -1 +1 @@\n-a\n+b\n\
                         --- a/tests/t.tcl\n+++ b/tests/t.tcl\n@@ -1 +1 @@\n-a\n+b\n";
    let archive = queue_archive(d.path(), &[("debian/patches/CVE-1.patch", with_test)]);
    let trimmed = |without: &[&str]| SecurityPin {
        debian: "1.0-1".into(),
        archive: "pkg_1.0-1.debian.tar.xz".into(),
        sha256: treehash::sha256_file(&archive).unwrap(),
        patches: vec![QueuePatch::Trimmed(crate::pins::TrimmedPatch {
            name: "CVE-1.patch".into(),
            without: without.iter().map(|s| s.to_string()).collect(),
            why: "written for a newer Redis".into(),
        })],
    };
    let q = read_queue(&archive, &trimmed(&["tests/t.tcl"])).unwrap();
    let files: Vec<&str> = q.patches[0].files.iter().map(|f| f.path()).collect();
    assert_eq!(files, ["src/x.c"]);
    assert_eq!(q.patches[0].left_out, ["tests/t.tcl"]);
    let err = format!(
        "{:#}",
        read_queue(&archive, &trimmed(&["tests/other.tcl"])).unwrap_err()
    );
    assert!(err.contains("does not change tests/other.tcl"), "{err}");
}

#[test]
fn a_missing_patch_names_the_archive_and_what_it_holds() {
    let d = tempfile::tempdir().unwrap();
    let archive = queue_archive(d.path(), &[("debian/patches/CVE-1.patch", FIX)]);
    let sec = SecurityPin {
        debian: "1.0-1".into(),
        archive: "pkg_1.0-1.debian.tar.xz".into(),
        sha256: treehash::sha256_file(&archive).unwrap(),
        patches: vec!["CVE-9.patch".into()],
    };
    let err = format!("{:#}", read_queue(&archive, &sec).unwrap_err());
    assert!(
        err.contains("has no debian/patches/CVE-9.patch") && err.contains("holds: CVE-1.patch"),
        "{err}"
    );
}
