//! A deterministic `.tar.gz` writer: entries sorted by path, one fixed mtime,
//! uid/gid 0 with empty owner names, normalised modes, plain ustar headers (no
//! pax records, so no timestamps hide in extensions), and a gzip header with no
//! name and no timestamp.

use std::{collections::BTreeMap, io::Write, path::Path};

use anyhow::{bail, Context, Result};

/// One entry of a release archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File { bytes: Vec<u8>, executable: bool },
    Symlink { target: String },
}

/// Paths (relative, `/`-separated) to entries; parent folders are implied.
#[derive(Debug, Default, Clone)]
pub struct TarTree {
    entries: BTreeMap<String, Entry>,
}

impl TarTree {
    pub fn new() -> TarTree {
        TarTree::default()
    }

    pub fn file(&mut self, path: &str, bytes: Vec<u8>, executable: bool) -> &mut Self {
        self.entries
            .insert(path.to_string(), Entry::File { bytes, executable });
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entries.insert(
            path.to_string(),
            Entry::Symlink {
                target: target.to_string(),
            },
        );
        self
    }

    pub fn add_file_from(
        &mut self,
        path: &str,
        source: &Path,
        executable: bool,
    ) -> Result<&mut Self> {
        let bytes =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        Ok(self.file(path, bytes, executable))
    }

    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter()
    }

    /// Every folder that holds an entry, each once.
    fn folders(&self) -> Vec<String> {
        let mut dirs = std::collections::BTreeSet::new();
        for path in self.entries.keys() {
            let mut cur = String::new();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                cur.push_str(part);
                cur.push('/');
                dirs.insert(cur.clone());
            }
        }
        dirs.into_iter().collect()
    }

    /// The uncompressed tar stream.
    pub fn tar_bytes(&self, mtime: u64) -> Result<Vec<u8>> {
        let mut all: Vec<(String, Option<&Entry>)> =
            self.folders().into_iter().map(|d| (d, None)).collect();
        all.extend(self.entries.iter().map(|(p, e)| (p.clone(), Some(e))));
        all.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        for (path, entry) in all {
            if path.starts_with('/') || path.split('/').any(|c| c == "..") {
                bail!("archive path {path} must be relative and stay inside");
            }
            let mut h = tar::Header::new_ustar();
            h.set_mtime(mtime);
            h.set_uid(0);
            h.set_gid(0);
            h.set_username("").ok();
            h.set_groupname("").ok();
            match entry {
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    h.set_path(&path)
                        .with_context(|| format!("archive path {path}"))?;
                    h.set_cksum();
                    builder.append(&h, std::io::empty())?;
                }
                Some(Entry::File { bytes, executable }) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(if *executable { 0o755 } else { 0o644 });
                    h.set_size(bytes.len() as u64);
                    h.set_path(&path)
                        .with_context(|| format!("archive path {path}"))?;
                    h.set_cksum();
                    builder.append(&h, bytes.as_slice())?;
                }
                Some(Entry::Symlink { target }) => {
                    if !link_stays_inside(&path, target) {
                        bail!(
                            "archive link {path} -> {target} points outside the archive; \
                             links must be relative and stay inside"
                        );
                    }
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    h.set_path(&path)
                        .with_context(|| format!("archive path {path}"))?;
                    h.set_link_name(target)
                        .with_context(|| format!("link target {target}"))?;
                    h.set_cksum();
                    builder.append(&h, std::io::empty())?;
                }
            }
        }
        Ok(builder.into_inner()?)
    }

    /// The `.tar.gz` bytes, at the release archive's level.
    pub fn tar_gz_bytes(&self, mtime: u64) -> Result<Vec<u8>> {
        gzip(&self.tar_bytes(mtime)?, Level::Best)
    }
}

/// Whether the relative link at `path` to `target` resolves inside the
/// archive (`a/b/x -> ../c` yes, `a/x -> ../../etc` and `/etc` no).
fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    let mut depth = path.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// How hard gzip works. The same tar stream at another level (or through
/// another encoder) gives other bytes, so both are part of [`Level::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Level 9: the release archive, downloaded by every user.
    Best,
    /// Level 6: the debug archive, fetched rarely; about 2 % larger and
    /// three times faster to make.
    Default,
}

impl Level {
    fn compression(self) -> flate2::Compression {
        match self {
            Level::Best => flate2::Compression::best(),
            Level::Default => flate2::Compression::default(),
        }
    }

    /// The encoder and level, for caches of gzip output.
    pub fn id(self) -> String {
        format!("zlib-rs-{}", self.compression().level())
    }
}

/// gzip with no file name, mtime 0, a fixed OS byte and `level`.
pub fn gzip(bytes: &[u8], level: Level) -> Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3) // Unix, whatever the builder runs on
        .write(Vec::new(), level.compression());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample() -> TarTree {
        let mut t = TarTree::new();
        t.file("pkg/bin/redis-server", b"\x7fELF...".to_vec(), true)
            .file("pkg/README", b"hello\n".to_vec(), false)
            .symlink("pkg/bin/redis-sentinel", "redis-server")
            .file("pkg/LICENSES/redis.txt", b"BSD\n".to_vec(), false);
        t
    }

    #[test]
    fn order_times_owners_and_modes_are_fixed() {
        let gz = sample().tar_gz_bytes(1_704_758_400).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&gz[..]));
        let mut seen = Vec::new();
        for e in tar.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_704_758_400);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some(""));
            assert!(
                h.as_ustar().is_some(),
                "plain ustar headers, no GNU or pax extensions"
            );
            assert!(!matches!(
                h.entry_type(),
                tar::EntryType::XHeader | tar::EntryType::XGlobalHeader
            ));
            seen.push((e.path().unwrap().display().to_string(), h.mode().unwrap()));
        }
        assert_eq!(
            seen,
            vec![
                ("pkg/".to_string(), 0o755),
                ("pkg/LICENSES/".to_string(), 0o755),
                ("pkg/LICENSES/redis.txt".to_string(), 0o644),
                ("pkg/README".to_string(), 0o644),
                ("pkg/bin/".to_string(), 0o755),
                ("pkg/bin/redis-sentinel".to_string(), 0o777),
                ("pkg/bin/redis-server".to_string(), 0o755),
            ]
        );
    }

    #[test]
    fn same_input_same_bytes_and_no_gzip_timestamp() {
        let a = sample().tar_gz_bytes(1).unwrap();
        let b = sample().tar_gz_bytes(1).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[4..8], &[0, 0, 0, 0], "gzip MTIME is zero");
        assert_eq!(a[3] & 0x08, 0, "no FNAME field");
        // Insertion order does not matter.
        let mut c = TarTree::new();
        c.file("pkg/LICENSES/redis.txt", b"BSD\n".to_vec(), false)
            .symlink("pkg/bin/redis-sentinel", "redis-server")
            .file("pkg/README", b"hello\n".to_vec(), false)
            .file("pkg/bin/redis-server", b"\x7fELF...".to_vec(), true);
        assert_eq!(c.tar_gz_bytes(1).unwrap(), a);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&a[..])
            .read_to_end(&mut out)
            .unwrap();
        assert!(out.len() % 512 == 0);
    }

    #[test]
    fn refuses_escaping_paths() {
        let mut t = TarTree::new();
        t.file("../x", vec![], false);
        assert!(t.tar_bytes(0).is_err());
    }

    fn paths_of(tar_bytes: &[u8]) -> Vec<(String, Option<String>)> {
        tar::Archive::new(tar_bytes)
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect()
    }

    /// ustar keeps 100 bytes of name and 155 of prefix: longer paths are
    /// split at a `/` and read back whole.
    #[test]
    fn paths_over_100_bytes_are_split_into_the_ustar_prefix() {
        let long = format!(
            "portable-redis-8.0.6-x86_64-linux-glibc2.11/LICENSES/redis/deps/{}/fast_float.h.LICENSE",
            "fast_float/include".repeat(3)
        );
        assert!(long.len() > 100 && long.len() < 255, "{}", long.len());
        let mut t = TarTree::new();
        t.file(&long, b"MIT\n".to_vec(), false);
        let bytes = t.tar_bytes(0).unwrap();
        let paths = paths_of(&bytes);
        assert_eq!(paths.last().unwrap().0, long);
        let headers: Vec<tar::Header> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().clone())
            .collect();
        let ustar = headers.last().unwrap().as_ustar().unwrap();
        assert!(!ustar.prefix.iter().all(|b| *b == 0), "the prefix is used");
    }

    #[test]
    fn paths_ustar_cannot_hold_are_errors_naming_them() {
        // One component over 100 bytes cannot be split.
        let wide = format!("pkg/{}", "x".repeat(101));
        let mut t = TarTree::new();
        t.file(&wide, vec![], false);
        let e = format!("{:#}", t.tar_bytes(0).unwrap_err());
        assert!(e.contains(&wide), "{e}");
        // Nor does anything over 255 bytes fit name and prefix.
        let deep = format!("pkg/{}x", "abcdefghi/".repeat(26));
        assert!(deep.len() > 255);
        let mut t = TarTree::new();
        t.file(&deep, vec![], false);
        let e = format!("{:#}", t.tar_bytes(0).unwrap_err());
        assert!(e.contains("archive path pkg/abcdefghi/"), "{e}");
    }

    #[test]
    fn links_must_stay_inside_the_archive() {
        let mut t = TarTree::new();
        t.file("pkg/lib/libx.so.1", vec![], false)
            .symlink("pkg/bin/libx.so", "../lib/libx.so.1")
            .symlink("pkg/bin/redis-check-aof", "./redis-server");
        let paths = paths_of(&t.tar_bytes(0).unwrap());
        assert!(paths.contains(&("pkg/bin/libx.so".into(), Some("../lib/libx.so.1".into()))));
        for (link, target) in [
            ("pkg/bin/passwd", "../../../etc/passwd"),
            ("pkg/bin/sh", "/bin/sh"),
            ("top", ".."),
        ] {
            let mut t = TarTree::new();
            t.symlink(link, target);
            let e = format!("{:#}", t.tar_bytes(0).unwrap_err());
            assert!(e.contains(&format!("{link} -> {target}")), "{e}");
        }
        assert!(link_stays_inside("pkg/bin/x", "../../pkg/y"));
        assert!(!link_stays_inside("pkg/bin/x", "../../../y"));
    }
}
