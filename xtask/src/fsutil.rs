//! File-system helpers that never leave anything half-written: work happens in a
//! temporary path next to the destination, then one rename publishes it.

use std::{
    fs,
    io::Write,
    os::unix::fs::{symlink, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use anyhow::{bail, Context, Result};

/// A folder that is removed on drop unless [`Staging::commit`] renamed it into place.
pub struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    /// A fresh, empty temporary folder beside `dest` (same file system, so the
    /// final rename is atomic).
    pub fn beside(dest: &Path) -> Result<Staging> {
        let path = temp_sibling(dest);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Staging { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publish the folder at `dest`, replacing whatever was there.
    pub fn commit(mut self, dest: &Path) -> Result<()> {
        replace_dir(&self.path, dest)?;
        self.keep = true;
        Ok(())
    }

    /// Publish a sub-folder of the staging folder at `dest`; the rest is removed.
    pub fn commit_subdir(self, sub: &Path, dest: &Path) -> Result<()> {
        replace_dir(&self.path.join(sub), dest)
        // `self` drops here and removes what is left of the staging folder.
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = make_writable_and_remove(&self.path);
        }
    }
}

/// A path beside `dest` that no other call of this process returns.
pub fn temp_sibling(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = dest
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

/// Move `from` to `to`; an existing `to` is moved aside first and removed after.
pub fn replace_dir(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let old = temp_sibling(to);
    let had_old = fs::symlink_metadata(to).is_ok();
    if had_old {
        fs::rename(to, &old).with_context(|| format!("moving {} aside", to.display()))?;
    }
    fs::rename(from, to)
        .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    if had_old {
        make_writable_and_remove(&old)?;
    }
    Ok(())
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let tmp = temp_sibling(path);
    let result = (|| -> Result<()> {
        let mut f =
            fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Set the modification time of every file below `dir` to `epoch` (seconds).
pub fn set_mtimes(dir: &Path, epoch: u64) -> Result<()> {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            set_mtimes(&path, epoch)?;
        } else if kind.is_file() {
            fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(when))
                .with_context(|| format!("setting the time of {}", path.display()))?;
        }
    }
    Ok(())
}

/// Copy a tree: regular files (keeping the execute bit), directories and
/// symlinks (as links). Anything else is an error.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            symlink(fs::read_link(&src)?, &dst)
                .with_context(|| format!("linking {}", dst.display()))?;
        } else if ft.is_file() {
            fs::copy(&src, &dst).with_context(|| format!("copying {}", src.display()))?;
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode))?;
        } else {
            bail!("{} is not a file, directory or symlink", src.display());
        }
    }
    Ok(())
}

/// Remove a tree even where the build made folders read-only.
pub fn make_writable_and_remove(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        for entry in fs::read_dir(path)? {
            make_writable_and_remove(&entry?.path())?;
        }
        fs::remove_dir(path).with_context(|| format!("removing {}", path.display()))
    } else {
        fs::remove_file(path).with_context(|| format!("removing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_removed_unless_committed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        let kept_path;
        {
            let s = Staging::beside(&dest).unwrap();
            fs::write(s.path().join("f"), "x").unwrap();
            kept_path = s.path().to_path_buf();
        }
        assert!(!kept_path.exists());
        assert!(!dest.exists());
        let s = Staging::beside(&dest).unwrap();
        fs::write(s.path().join("f"), "y").unwrap();
        s.commit(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("f")).unwrap(), "y");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            1,
            "no temporary left behind"
        );
    }

    #[test]
    fn write_atomic_replaces_whole_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
