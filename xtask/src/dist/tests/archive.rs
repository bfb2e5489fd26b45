//! The release archive: its layout and its bytes.

use super::*;

/// A stripped program with made-up bytes: packaging needs no compiler.
fn program(name: &str, build_id: &str) -> stages::Program {
    stages::Program {
        name: name.into(),
        stripped: format!("{name}, stripped").into_bytes(),
        unstripped: format!("{name}, with its symbols").into_bytes(),
        build_id: build_id.into(),
    }
}

fn fake_programs() -> Vec<stages::Program> {
    vec![
        program("redis-server", "4ad3f2c1e0b9a8877665544332211aabbccddeef"),
        program("redis-cli", "b10000000000000000000000000000000000000c"),
        program(
            "redis-benchmark",
            "c20000000000000000000000000000000000000b",
        ),
    ]
}

/// A tar entry: path, kind, mode, link target, bytes.
type Entry = (String, tar::EntryType, u32, Option<String>, Vec<u8>);

/// Each entry of a tar stream.
fn entries(tar_bytes: &[u8]) -> Vec<Entry> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        assert_eq!(h.mtime().unwrap(), 1_704_758_400, "one fixed time");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        let link = e.link_name().unwrap().map(|l| l.display().to_string());
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        out.push((
            e.path().unwrap().display().to_string(),
            h.entry_type(),
            h.mode().unwrap(),
            link,
            bytes,
        ));
    }
    out
}

#[test]
fn the_programs_go_to_bin_with_their_aliases_and_their_symbols_by_build_id() {
    let name = "portable-redis-7.0.15-x86_64-linux-glibc2.11";
    let programs = fake_programs();
    let (mut release, mut debug) = (TarTree::new(), TarTree::new());
    let (outputs, debug_outputs) = stages::add_programs(name, &programs, &mut release, &mut debug);

    let files: Vec<_> = entries(&release.tar_bytes(1_704_758_400).unwrap())
        .into_iter()
        .filter(|e| e.1 != tar::EntryType::Directory)
        .collect();
    let bin = |p: &str| format!("{name}/bin/{p}");
    let mut want: Vec<Entry> = programs
        .iter()
        .map(|p| {
            let path = bin(&p.name);
            (
                path,
                tar::EntryType::Regular,
                0o755,
                None,
                p.stripped.clone(),
            )
        })
        .collect();
    for alias in ["redis-check-aof", "redis-check-rdb", "redis-sentinel"] {
        want.push((
            bin(alias),
            tar::EntryType::Symlink,
            0o777,
            Some("redis-server".into()),
            Vec::new(),
        ));
    }
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(files, want);

    let debug_files: Vec<_> = entries(&debug.tar_bytes(1_704_758_400).unwrap())
        .into_iter()
        .filter(|e| e.1 != tar::EntryType::Directory)
        .map(|e| (e.0, e.2, e.4))
        .collect();
    assert_eq!(
        debug_files,
        [
            (
                ".build-id/4a/d3f2c1e0b9a8877665544332211aabbccddeef.debug".to_string(),
                0o644,
                programs[0].unstripped.clone()
            ),
            (
                ".build-id/b1/0000000000000000000000000000000000000c.debug".to_string(),
                0o644,
                programs[1].unstripped.clone()
            ),
            (
                ".build-id/c2/0000000000000000000000000000000000000b.debug".to_string(),
                0o644,
                programs[2].unstripped.clone()
            ),
        ]
    );

    // BUILDINFO's outputs: in the programs' order, each with its hash and id.
    let got: Vec<(&str, &str, Option<&str>)> = outputs
        .iter()
        .map(|o| (o.path.as_str(), o.sha256.as_str(), o.build_id.as_deref()))
        .collect();
    let hashes: Vec<String> = programs
        .iter()
        .map(|p| crate::treehash::sha256_bytes(&p.stripped))
        .collect();
    assert_eq!(
        got,
        [
            (
                "bin/redis-server",
                hashes[0].as_str(),
                Some(programs[0].build_id.as_str())
            ),
            (
                "bin/redis-cli",
                hashes[1].as_str(),
                Some(programs[1].build_id.as_str())
            ),
            (
                "bin/redis-benchmark",
                hashes[2].as_str(),
                Some(programs[2].build_id.as_str())
            ),
        ]
    );
    assert_eq!(
        debug_outputs[0].sha256,
        crate::treehash::sha256_bytes(&programs[0].unstripped)
    );
    assert!(debug_outputs[2].path.starts_with(".build-id/c2/"));
}

#[test]
fn an_archive_is_the_same_bytes_for_the_same_tree_and_rewritten_only_when_it_changes() {
    let d = tempfile::tempdir().unwrap();
    let project = Project::new(d.path().to_path_buf(), d.path().join("state"));
    let name = "portable-redis-7.0.15-x86_64-linux-glibc2.11";
    let tree = |extra: &[u8]| {
        let (mut release, mut debug) = (TarTree::new(), TarTree::new());
        stages::add_programs(name, &fake_programs(), &mut release, &mut debug);
        release.file(&format!("{name}/README"), extra.to_vec(), false);
        release
    };
    let dest = d.path().join("out/r.tar.gz");
    let first = write_tar_gz(&project, &tree(b"a"), 1, Level::Best, &dest).unwrap();
    let bytes = fs::read(&dest).unwrap();
    assert_eq!(first, crate::treehash::sha256_bytes(&bytes));
    let modified = fs::metadata(&dest).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = write_tar_gz(&project, &tree(b"a"), 1, Level::Best, &dest).unwrap();
    assert_eq!(again, first);
    assert_eq!(
        fs::metadata(&dest).unwrap().modified().unwrap(),
        modified,
        "the same bytes are not written again"
    );
    let changed = write_tar_gz(&project, &tree(b"b"), 1, Level::Best, &dest).unwrap();
    assert_ne!(changed, first);
    assert_eq!(
        crate::treehash::sha256_bytes(&fs::read(&dest).unwrap()),
        changed
    );
    // The gzip of each tar stream is kept under the stream's hash.
    assert_eq!(
        fs::read_dir(project.state.join("packages"))
            .unwrap()
            .count(),
        2
    );
}
