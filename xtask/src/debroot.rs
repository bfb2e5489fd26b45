//! A root of Debian packages: `.deb` files unpacked side by side into one
//! folder (nothing installed, no maintainer script run), its absolute links
//! made relative so they stay inside it, and the `/lib`-style aliases a
//! system whose files are all below `/usr` has. The emulator runs another
//! architecture's programs on one; the bench runs Debian's own server from
//! one, with that root's loader and libraries.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::fsutil::{self, Staging};

/// The folder `parent/<name>-<key>` of a root whose packages `inputs`
/// (lines: architecture, suites, package names) choose, the key the first 12
/// hex digits of their SHA-256: other inputs, another root.
pub fn keyed(parent: &Path, name: &str, inputs: &[String]) -> PathBuf {
    let key = crate::treehash::sha256_bytes(inputs.join("\n").as_bytes());
    parent.join(format!("{name}-{}", &key[..12]))
}

/// `debs` unpacked into `dest` (staged, then renamed into place), with
/// [`ROOT_STAMP`] listing them.
pub fn unpack(debs: &[PathBuf], dest: &Path) -> Result<()> {
    let staging = Staging::beside(dest)?;
    let mut names = String::new();
    for deb in debs {
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(staging.path())
            .output()
            .context("running dpkg-deb (Debian's dpkg package)")?;
        if !out.status.success() {
            bail!(
                "dpkg-deb -x {} failed: {} (remove the file to fetch it again)",
                deb.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        names.push_str(&format!(
            "{}\n",
            deb.file_name().unwrap_or_default().to_string_lossy()
        ));
    }
    relative_links(staging.path(), staging.path())?;
    usr_aliases(staging.path())?;
    fsutil::write_atomic(&staging.path().join(ROOT_STAMP), names.as_bytes())?;
    staging.commit(dest)
}

/// The file in a finished root that lists the packages in it.
pub const ROOT_STAMP: &str = "portable-redis-root";

/// A system whose files all live below `/usr` (Debian from trixie on) has
/// `/lib` and the others as links into it, which base-files makes, not the
/// C library's package: the root gets them too, so `/lib/ld-linux-….so.1`
/// is found either way.
pub fn usr_aliases(root: &Path) -> Result<()> {
    for dir in ["lib", "lib64", "bin", "sbin"] {
        let (alias, real) = (root.join(dir), root.join("usr").join(dir));
        if real.is_dir() && fs::symlink_metadata(&alias).is_err() {
            std::os::unix::fs::symlink(Path::new("usr").join(dir), &alias)
                .with_context(|| format!("linking {} to usr/{dir}", alias.display()))?;
        }
    }
    Ok(())
}

/// Absolute symbolic links in `dir` (a loader link such as
/// `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/…`) made relative
/// to `root`, so they stay inside it: the emulator looks a path up in the
/// root, the kernel follows links from `/`.
fn relative_links(root: &Path, dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        let meta =
            fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if meta.file_type().is_symlink() {
            let target =
                fs::read_link(&path).with_context(|| format!("reading {}", path.display()))?;
            if let Ok(inside) = target.strip_prefix("/") {
                let depth = path
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map_or(0, |p| p.components().count());
                let relative: PathBuf = std::iter::repeat_n(Path::new(".."), depth)
                    .collect::<PathBuf>()
                    .join(inside);
                fs::remove_file(&path)
                    .and_then(|()| std::os::unix::fs::symlink(&relative, &path))
                    .with_context(|| {
                        format!("making {} point at {}", path.display(), relative.display())
                    })?;
            }
        } else if meta.is_dir() {
            relative_links(root, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_point_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("lib/aarch64-linux-gnu")).unwrap();
        fs::write(root.join("lib/aarch64-linux-gnu/ld.so"), "x").unwrap();
        std::os::unix::fs::symlink("/lib/aarch64-linux-gnu/ld.so", root.join("lib/ld.so.1"))
            .unwrap();
        std::os::unix::fs::symlink("ld.so", root.join("lib/aarch64-linux-gnu/same")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/aarch64-linux-gnu/ld.so",
            root.join("lib/aarch64-linux-gnu/deep"),
        )
        .unwrap();
        relative_links(root, root).unwrap();
        assert_eq!(
            fs::read_link(root.join("lib/aarch64-linux-gnu/deep")).unwrap(),
            Path::new("../../lib/aarch64-linux-gnu/ld.so")
        );
        assert_eq!(
            fs::read_to_string(root.join("lib/aarch64-linux-gnu/deep")).unwrap(),
            "x"
        );
        assert_eq!(
            fs::read_link(root.join("lib/ld.so.1")).unwrap(),
            Path::new("../lib/aarch64-linux-gnu/ld.so")
        );
        assert_eq!(fs::read_to_string(root.join("lib/ld.so.1")).unwrap(), "x");
        assert_eq!(
            fs::read_link(root.join("lib/aarch64-linux-gnu/same")).unwrap(),
            Path::new("ld.so")
        );
    }

    /// A root whose files are all below usr/ gets lib -> usr/lib; a root
    /// that has its own lib/ keeps it.
    #[test]
    fn usr_only_roots_get_their_aliases() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("usr/lib/aarch64-linux-gnu")).unwrap();
        fs::write(root.join("usr/lib/ld-linux-aarch64.so.1"), "x").unwrap();
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();
        usr_aliases(root).unwrap();
        assert_eq!(
            fs::read_link(root.join("lib")).unwrap(),
            Path::new("usr/lib")
        );
        assert_eq!(
            fs::read_to_string(root.join("lib/ld-linux-aarch64.so.1")).unwrap(),
            "x"
        );
        assert!(fs::symlink_metadata(root.join("bin")).unwrap().is_dir());
        assert!(fs::symlink_metadata(root.join("lib64")).is_err());
    }
}
