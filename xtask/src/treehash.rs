//! Content hash of an unpacked source tree.
//!
//! The hash identifies a tree by what is in it, not by the archive it came in,
//! so one pin accepts the same tree from any origin (upstream tarball, Debian
//! orig tarball, crate, mirror). Definition (also in ARCHITECTURE.md):
//!
//! * every regular file and symlink below the root is an entry; directories
//!   are implied by the entries' paths (an empty directory does not count);
//! * entries are sorted by their `/`-separated relative path, bytewise;
//! * a regular file contributes `file <mode> <path>\0<sha256(bytes)>\n` where
//!   `<mode>` is `755` when any execute bit is set and `644` otherwise;
//! * a symlink contributes `link <path>\0<target>\n`;
//! * any other file type (device, fifo, socket) makes the tree unhashable;
//! * the tree hash is `sha256:` followed by the hex SHA-256 of all records.

use std::{
    fmt,
    fs::{self, File},
    io::{self, Read},
    os::unix::{ffi::OsStrExt, fs::PermissionsExt},
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// `sha256:<64 hex digits>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TreeHash(String);

impl TreeHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first hex digits, for folder names.
    pub fn short(&self) -> &str {
        &self.0["sha256:".len().."sha256:".len() + 12]
    }
}

impl fmt::Display for TreeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TreeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TreeHash {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let hex = s
            .strip_prefix("sha256:")
            .with_context(|| format!("tree hash `{s}` must start with `sha256:`"))?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        {
            bail!("tree hash `{s}` must be `sha256:` and 64 lowercase hex digits");
        }
        Ok(TreeHash(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for TreeHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for TreeHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Hash the tree rooted at `root`.
pub fn tree_hash(root: &Path) -> Result<TreeHash> {
    let mut entries = Vec::new();
    collect(root, PathBuf::new(), &mut entries)?;
    entries.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));

    let mut hasher = Sha256::new();
    for (rel, kind) in entries {
        let full = root.join(&rel);
        let path = rel.as_os_str().as_bytes();
        match kind {
            Kind::File { exec } => {
                let digest = sha256_file(&full)?;
                hasher.update(if exec { b"file 755 " } else { b"file 644 " });
                hasher.update(path);
                hasher.update(b"\0");
                hasher.update(digest.as_bytes());
            }
            Kind::Link => {
                let target = fs::read_link(&full)
                    .with_context(|| format!("reading link {}", full.display()))?;
                hasher.update(b"link ");
                hasher.update(path);
                hasher.update(b"\0");
                hasher.update(target.as_os_str().as_bytes());
            }
        }
        hasher.update(b"\n");
    }
    Ok(TreeHash(format!(
        "sha256:{}",
        hex::encode(hasher.finalize())
    )))
}

enum Kind {
    File { exec: bool },
    Link,
}

fn collect(root: &Path, rel: PathBuf, out: &mut Vec<(PathBuf, Kind)>) -> Result<()> {
    let dir = root.join(&rel);
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let child = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        let ft = meta.file_type();
        if ft.is_dir() {
            collect(root, child, out)?;
        } else if ft.is_file() {
            out.push((
                child,
                Kind::File {
                    exec: meta.permissions().mode() & 0o111 != 0,
                },
            ));
        } else if ft.is_symlink() {
            out.push((child, Kind::Link));
        } else {
            bail!(
                "{} is neither a file, a directory nor a symlink; a source tree cannot hold it",
                entry.path().display()
            );
        }
    }
    Ok(())
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of everything a reader yields.
pub fn sha256_reader(mut r: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut r, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn write(root: &Path, rel: &str, body: &str, mode: u32) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn sample() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a/b.c", "int x;\n", 0o644);
        write(d.path(), "configure", "#!/bin/sh\n", 0o755);
        symlink("b.c", d.path().join("a/link.c")).unwrap();
        d
    }

    #[test]
    fn same_content_same_hash_whatever_the_folder() {
        let (a, b) = (sample(), sample());
        fs::create_dir(b.path().join("empty")).unwrap();
        // Read-only-ness and other bits than execute do not matter.
        fs::set_permissions(b.path().join("a/b.c"), fs::Permissions::from_mode(0o444)).unwrap();
        assert_eq!(tree_hash(a.path()).unwrap(), tree_hash(b.path()).unwrap());
    }

    #[test]
    fn bytes_exec_bit_link_target_and_names_all_count() {
        let base = tree_hash(sample().path()).unwrap();
        let changes: [&dyn Fn(&Path); 4] = [
            &|p| write(p, "a/b.c", "int y;\n", 0o644),
            &|p| {
                fs::set_permissions(p.join("configure"), fs::Permissions::from_mode(0o644)).unwrap()
            },
            &|p| {
                fs::remove_file(p.join("a/link.c")).unwrap();
                symlink("../configure", p.join("a/link.c")).unwrap();
            },
            &|p| fs::rename(p.join("a/b.c"), p.join("a/c.c")).unwrap(),
        ];
        for change in changes {
            let d = sample();
            change(d.path());
            assert_ne!(tree_hash(d.path()).unwrap(), base);
        }
    }

    #[test]
    fn known_value() {
        // One file: the record is fixed by the definition above.
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "x", "hi\n", 0o600);
        let record = format!("file 644 x\0{}\n", sha256_bytes(b"hi\n"));
        assert_eq!(
            tree_hash(d.path()).unwrap().as_str(),
            format!("sha256:{}", sha256_bytes(record.as_bytes()))
        );
    }

    #[test]
    fn parses_only_well_formed_hashes() {
        assert!("sha256:00".parse::<TreeHash>().is_err());
        assert!(format!("md5:{}", "0".repeat(64))
            .parse::<TreeHash>()
            .is_err());
        assert!(format!("sha256:{}", "A".repeat(64))
            .parse::<TreeHash>()
            .is_err());
        assert!(format!("sha256:{}", "a".repeat(64))
            .parse::<TreeHash>()
            .is_ok());
    }
}
