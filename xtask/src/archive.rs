//! Safe, atomic extraction of source archives (tar, tar.gz, tar.xz, .crate).
//!
//! Refused: absolute paths, `..` components, links whose target leaves the
//! tree, hard links to entries not extracted before, device files, fifos and
//! sparse files, and writes through a symlink. The archive is unpacked into a
//! temporary folder, its tree hash is checked against the pin, and only then is
//! the tree renamed into place: a failure leaves nothing behind.

use std::{
    fs::{self, File},
    io::{self, BufReader, Read},
    os::unix::fs::{symlink, PermissionsExt},
    path::{Component, Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::{anyhow, bail, Context, Result};

use crate::{
    fsutil::Staging,
    treehash::{tree_hash, TreeHash},
};

/// Which part of the archive is the source tree.
#[derive(Debug, Clone)]
pub enum Root {
    /// The archive's single top-level folder (`redis-7.0.15/…`).
    SingleTopDir,
    /// A folder inside the archive (`openssl-src-300.5.5+3.5.5/openssl`).
    Subdir(PathBuf),
}

/// Unpack `archive`, check the tree against `expected` and publish it at `dest`.
pub fn extract_verified(
    archive: &Path,
    root: &Root,
    expected: &TreeHash,
    dest: &Path,
) -> Result<()> {
    extract_checked(archive, root, Some(expected), dest).map(|_| ())
}

/// Unpack `archive` safely and publish its tree at `dest`, returning the
/// tree's hash. With `expected`, a tree of another hash is refused and nothing
/// is published; without it (a new pin being prepared), any safe tree is
/// accepted and its hash is what the pin will say.
pub fn extract_checked(
    archive: &Path,
    root: &Root,
    expected: Option<&TreeHash>,
    dest: &Path,
) -> Result<TreeHash> {
    let staging = Staging::beside(dest)?;
    unpack(archive, staging.path()).with_context(|| format!("unpacking {}", archive.display()))?;
    let sub = select_root(staging.path(), root)
        .with_context(|| format!("finding the source tree in {}", archive.display()))?;
    check_links_stay_inside(&staging.path().join(&sub))
        .with_context(|| format!("checking {}", archive.display()))?;
    let got = tree_hash(&staging.path().join(&sub))?;
    if let Some(expected) = expected {
        if &got != expected {
            bail!(
                "tree hash mismatch for {}: the pin expects {expected}, the archive holds {got}",
                archive.display()
            );
        }
    }
    staging.commit_subdir(&sub, dest)?;
    Ok(got)
}

/// Unpack every entry of `archive` below `into` (which must exist and be empty).
pub fn unpack(archive: &Path, into: &Path) -> Result<()> {
    let mut tar = open_tar(archive)?;
    for entry in tar.entries().context("reading the tar stream")? {
        let mut entry = entry.context("reading a tar entry")?;
        let path = entry
            .path()
            .context("reading an entry's path")?
            .into_owned();
        unpack_entry(&mut entry, &path, into)
            .with_context(|| format!("entry `{}`", path.display()))?;
    }
    Ok(())
}

/// The regular files of `archive` whose path (as stored, `./` dropped)
/// `wanted` accepts, by path; nothing is written to disk.
pub fn read_files(
    archive: &Path,
    wanted: impl Fn(&str) -> bool,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    let mut out = std::collections::BTreeMap::new();
    let mut tar = open_tar(archive)?;
    for entry in tar
        .entries()
        .with_context(|| format!("reading {}", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", archive.display()))?;
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./").to_string();
        if wanted(&path) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("reading {path} in {}", archive.display()))?;
            out.insert(path, bytes);
        }
    }
    Ok(out)
}

/// A tar reader over `archive`, gzip or xz decoded by their magic bytes.
fn open_tar(archive: &Path) -> Result<tar::Archive<Box<dyn Read>>> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 6];
    let n = read_up_to(&mut reader, &mut magic)?;
    let head = io::Cursor::new(magic[..n].to_vec()).chain(reader);
    let decoded: Box<dyn Read> = if magic[..n].starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(head))
    } else if magic[..n].starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Box::new(xz4rust::XzReader::new(head))
    } else {
        Box::new(head)
    };
    Ok(tar::Archive::new(decoded))
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn unpack_entry(entry: &mut tar::Entry<'_, impl Read>, path: &Path, into: &Path) -> Result<()> {
    use tar::EntryType as T;
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
    ) {
        return Ok(()); // metadata, already applied by the tar reader
    }
    let rel = safe_relative(path)?;
    if rel.as_os_str().is_empty() {
        return Ok(()); // the archive's `./`
    }
    let dest = into.join(&rel);
    ensure_real_parents(into, &rel)?;
    match kind {
        T::Directory => {
            if !dest.is_dir() {
                fs::create_dir(&dest).with_context(|| format!("creating {}", dest.display()))?;
            }
        }
        T::Regular | T::Continuous => {
            refuse_existing_link(&dest)?;
            let mut out =
                File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
            io::copy(entry, &mut out).with_context(|| format!("writing {}", dest.display()))?;
            let exec = entry
                .header()
                .mode()
                .map(|m| m & 0o111 != 0)
                .unwrap_or(false);
            out.set_permissions(fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
            if let Ok(mtime) = entry.header().mtime() {
                out.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))?;
            }
        }
        T::Symlink => {
            let target = entry
                .link_name()?
                .ok_or_else(|| anyhow!("symlink without a target"))?
                .into_owned();
            if target.is_absolute() {
                bail!(
                    "symlink to the absolute path {} is refused",
                    target.display()
                );
            }
            let parent = rel.parent().unwrap_or(Path::new(""));
            if lexical_join(parent, &target).is_none() {
                bail!("symlink to {} leaves the tree", target.display());
            }
            refuse_existing_link(&dest)?;
            symlink(&target, &dest).with_context(|| format!("linking {}", dest.display()))?;
        }
        T::Link => {
            let target = entry
                .link_name()?
                .ok_or_else(|| anyhow!("hard link without a target"))?
                .into_owned();
            let target_rel = safe_relative(&target)?;
            let src = into.join(&target_rel);
            let meta = fs::symlink_metadata(&src).map_err(|_| {
                anyhow!(
                    "hard link to {} which the archive did not hold before it",
                    target.display()
                )
            })?;
            if !meta.is_file() {
                bail!(
                    "hard link to {}, which is not a regular file",
                    target.display()
                );
            }
            refuse_existing_link(&dest)?;
            fs::copy(&src, &dest).with_context(|| format!("copying {}", src.display()))?;
        }
        T::Char | T::Block => bail!("device files are refused"),
        T::Fifo => bail!("fifos are refused"),
        T::GNUSparse => bail!("sparse files are refused"),
        other => bail!("entry type {other:?} is refused"),
    }
    Ok(())
}

/// A relative path with no `..`, no root and no `.` components.
fn safe_relative(path: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => bail!("path {} contains `..`", path.display()),
            Component::RootDir | Component::Prefix(_) => {
                bail!("absolute path {} is refused", path.display())
            }
        }
    }
    Ok(out)
}

/// `base/rel` with `..` resolved lexically; `None` when it climbs above the root.
fn lexical_join(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut parts: Vec<_> = base.components().collect();
    for c in rel.components() {
        match c {
            Component::Normal(_) => parts.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Every existing ancestor of `into/rel` must be a real folder, never a symlink,
/// so that no entry is written through a link.
fn ensure_real_parents(into: &Path, rel: &Path) -> Result<()> {
    let mut cur = into.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            cur.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!(
                    "{} is not a folder (a link or a file); writing through it is refused",
                    cur.display()
                ),
                Err(_) => {
                    fs::create_dir(&cur).with_context(|| format!("creating {}", cur.display()))?
                }
            }
        }
    }
    Ok(())
}

fn refuse_existing_link(dest: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(dest) {
        if m.file_type().is_symlink() {
            bail!(
                "{} is already a symlink; overwriting it is refused",
                dest.display()
            );
        }
        if m.is_dir() {
            bail!("{} is already a folder", dest.display());
        }
    }
    Ok(())
}

/// Which folder inside the unpacked archive is the tree.
fn select_root(unpacked: &Path, root: &Root) -> Result<PathBuf> {
    match root {
        Root::Subdir(sub) => {
            let sub = safe_relative(sub)?;
            let p = unpacked.join(&sub);
            match fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => Ok(sub),
                _ => bail!("the archive has no folder `{}`", sub.display()),
            }
        }
        Root::SingleTopDir => {
            let mut top = Vec::new();
            for e in fs::read_dir(unpacked)? {
                let e = e?;
                top.push((e.file_name(), e.file_type()?.is_dir()));
            }
            match top.as_slice() {
                [(name, true)] => Ok(PathBuf::from(name)),
                [] => bail!("the archive is empty"),
                _ => bail!(
                    "expected one top-level folder, found: {}",
                    top.iter()
                        .map(|(n, _)| n.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    }
}

/// After choosing the tree root, every symlink must still point inside it.
fn check_links_stay_inside(root: &Path) -> Result<()> {
    fn walk(root: &Path, rel: &Path) -> Result<()> {
        for e in fs::read_dir(root.join(rel))? {
            let e = e?;
            let child = rel.join(e.file_name());
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(root, &child)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(e.path())?;
                if target.is_absolute() || lexical_join(rel, &target).is_none() {
                    bail!(
                        "symlink {} -> {} leaves the source tree",
                        child.display(),
                        target.display()
                    );
                }
            }
        }
        Ok(())
    }
    walk(root, Path::new(""))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a .tar.gz with raw headers, so hostile entries can be crafted.
    pub(crate) struct Crafted {
        builder: tar::Builder<flate2::write::GzEncoder<Vec<u8>>>,
    }

    impl Crafted {
        pub(crate) fn new() -> Self {
            let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            Crafted {
                builder: tar::Builder::new(gz),
            }
        }

        fn header(kind: tar::EntryType, path: &str, size: u64, mode: u32) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            // Write the name bytes directly: set_path refuses `..` and absolute paths.
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_size(size);
            h.set_mode(mode);
            h.set_mtime(1_700_000_000);
            h.set_cksum();
            h
        }

        pub(crate) fn file(mut self, path: &str, body: &str, mode: u32) -> Self {
            let h = Self::header(tar::EntryType::Regular, path, body.len() as u64, mode);
            self.builder.append(&h, body.as_bytes()).unwrap();
            self
        }

        pub(crate) fn dir(mut self, path: &str) -> Self {
            let h = Self::header(tar::EntryType::Directory, path, 0, 0o755);
            self.builder.append(&h, io::empty()).unwrap();
            self
        }

        pub(crate) fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Self {
            let mut h = Self::header(kind, path, 0, 0o777);
            let name = &mut h.as_old_mut().linkname;
            name.fill(0);
            name[..target.len()].copy_from_slice(target.as_bytes());
            h.set_cksum();
            self.builder.append(&h, io::empty()).unwrap();
            self
        }

        pub(crate) fn device(mut self, path: &str) -> Self {
            let h = Self::header(tar::EntryType::Char, path, 0, 0o644);
            self.builder.append(&h, io::empty()).unwrap();
            self
        }

        pub(crate) fn write(self, path: &Path) {
            let gz = self.builder.into_inner().unwrap();
            fs::write(path, gz.finish().unwrap()).unwrap();
        }
    }

    fn good() -> Crafted {
        Crafted::new()
            .dir("pkg-1.0/")
            .file("pkg-1.0/README", "hello\n", 0o644)
            .file("pkg-1.0/configure", "#!/bin/sh\n", 0o755)
            .link(tar::EntryType::Symlink, "pkg-1.0/READ.ME", "README")
    }

    fn hash_of(c: Crafted) -> TreeHash {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.tar.gz");
        c.write(&a);
        let out = d.path().join("x");
        fs::create_dir(&out).unwrap();
        unpack(&a, &out).unwrap();
        tree_hash(&out.join("pkg-1.0")).unwrap()
    }

    #[test]
    fn extracts_and_verifies_a_good_archive() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("pkg.tar.gz");
        good().write(&a);
        let expected = hash_of(good());
        let dest = d.path().join("tree");
        extract_verified(&a, &Root::SingleTopDir, &expected, &dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("README")).unwrap(), "hello\n");
        assert_eq!(
            fs::read_link(dest.join("READ.ME")).unwrap(),
            Path::new("README")
        );
        assert_eq!(
            fs::metadata(dest.join("configure"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
    }

    fn refused(c: Crafted, what: &str) {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("evil.tar.gz");
        c.write(&a);
        let dest = d.path().join("tree");
        let any = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        let err = format!(
            "{:#}",
            extract_verified(&a, &Root::SingleTopDir, &any, &dest).unwrap_err()
        );
        assert!(err.contains(what), "expected `{what}` in: {err}");
        // Nothing is left behind: not the destination, not a temporary.
        let left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("evil.tar.gz")],
            "left behind: {left:?}"
        );
    }

    #[test]
    fn refuses_parent_components() {
        refused(
            good().file("pkg-1.0/../../etc/passwd", "x", 0o644),
            "contains `..`",
        );
    }

    #[test]
    fn refuses_absolute_paths() {
        refused(good().file("/tmp/evil", "x", 0o644), "absolute path");
    }

    #[test]
    fn refuses_symlinks_out_of_the_tree() {
        refused(
            good().link(tar::EntryType::Symlink, "pkg-1.0/up", "../../x"),
            "leaves the tree",
        );
        refused(
            good().link(tar::EntryType::Symlink, "pkg-1.0/abs", "/etc/passwd"),
            "absolute path",
        );
        // Inside the archive but outside the chosen tree root.
        refused(
            good()
                .dir("other/")
                .link(tar::EntryType::Symlink, "other/l", "x"),
            "one top-level folder",
        );
    }

    #[test]
    fn refuses_writing_through_a_symlink() {
        let c = good()
            .link(tar::EntryType::Symlink, "pkg-1.0/sub", ".")
            .file("pkg-1.0/sub/README", "overwrite", 0o644);
        refused(c, "writing through it is refused");
    }

    #[test]
    fn refuses_hard_links_to_unknown_entries_and_devices() {
        refused(
            good().link(tar::EntryType::Link, "pkg-1.0/h", "pkg-1.0/missing"),
            "did not hold",
        );
        refused(good().device("pkg-1.0/null"), "device files are refused");
    }

    #[test]
    fn mismatch_names_both_hashes_and_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("pkg.tar.gz");
        good().write(&a);
        let wrong: TreeHash = format!("sha256:{}", "1".repeat(64)).parse().unwrap();
        let err =
            extract_verified(&a, &Root::SingleTopDir, &wrong, &d.path().join("t")).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains(wrong.as_str()) && msg.contains(hash_of(good()).as_str()),
            "{msg}"
        );
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn subdir_root_selects_a_nested_tree() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("c.crate");
        Crafted::new()
            .file("crate-1/Cargo.toml", "[package]\n", 0o644)
            .file("crate-1/src/README", "hello\n", 0o644)
            .write(&a);
        let inner = tempfile::tempdir().unwrap();
        fs::write(inner.path().join("README"), "hello\n").unwrap();
        let expected = tree_hash(inner.path()).unwrap();
        let dest = d.path().join("t");
        extract_verified(&a, &Root::Subdir("crate-1/src".into()), &expected, &dest).unwrap();
        assert!(dest.join("README").is_file());
    }
}
