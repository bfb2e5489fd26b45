//! Input-addressed steps. A step's output folder is named by the SHA-256 of
//! its key record (its recipe and every input), is written in a staging
//! folder beside it and renamed into place: a folder that exists is
//! complete, and a change of any input is a new folder. Its log lives
//! outside the staging folder, so a failed step's log stays where the error
//! says it is. The OpenSSL and Redis builds, the glibc target host and the
//! sanitizer build are such steps.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{fsutil::Staging, project::Project, treehash};

/// A step before it runs: its key and where its output goes.
#[derive(Debug, Clone)]
pub struct CachedStep {
    /// What messages call it, and the start of its folder's name.
    pub name: String,
    /// Hex SHA-256 of the key record.
    pub key: String,
    /// `<parent>/<name>-<first 16 hex digits of the key>`.
    pub out: PathBuf,
}

impl CachedStep {
    /// The step named `name` whose key record is `record`, with its output in
    /// `parent`.
    pub fn new(parent: &Path, name: &str, record: &serde_json::Value) -> CachedStep {
        let key = treehash::sha256_bytes(record.to_string().as_bytes());
        let out = parent.join(format!("{name}-{}", &key[..16]));
        CachedStep {
            name: name.to_string(),
            key,
            out,
        }
    }

    /// What `complete` finds in the output folder, said as cached; `None`
    /// when the step has to run.
    pub fn cached<T>(&self, complete: impl FnOnce(&Path) -> Option<T>) -> Option<T> {
        let found = complete(&self.out)?;
        eprintln!("  {}: cached ({})", self.name, self.out.display());
        Some(found)
    }

    /// A fresh staging folder beside the output.
    pub fn stage(&self) -> Result<Staging> {
        Staging::beside(&self.out)
    }

    /// The staged output (or its `subdir`) renamed into place.
    pub fn commit(&self, staging: Staging, subdir: Option<&Path>) -> Result<()> {
        match subdir {
            Some(s) => staging.commit_subdir(s, &self.out),
            None => staging.commit(&self.out),
        }
    }

    /// The step's log folder, `<state>/logs/<its name>`, emptied.
    pub fn logs(&self, project: &Project, name: &str) -> PathBuf {
        let dir = project.state.join("logs").join(name);
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// The log folder named after the output folder.
    pub fn own_logs(&self, project: &Project) -> PathBuf {
        let name = self
            .out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.logs(project, &name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_records_hash_and_names_the_folder() {
        let record =
            serde_json::json!({"step": "redis", "recipe": 3, "inputs": {"tree": "sha256:1"}});
        let step = CachedStep::new(Path::new("/state/builds"), "redis-7.0.15", &record);
        assert_eq!(
            step.key,
            treehash::sha256_bytes(record.to_string().as_bytes())
        );
        assert_eq!(
            step.out,
            Path::new("/state/builds").join(format!("redis-7.0.15-{}", &step.key[..16]))
        );
        let other =
            serde_json::json!({"step": "redis", "recipe": 4, "inputs": {"tree": "sha256:1"}});
        assert_ne!(
            CachedStep::new(Path::new("/state/builds"), "redis-7.0.15", &other).out,
            step.out,
            "a new recipe is a new folder"
        );
    }

    #[test]
    fn only_a_committed_output_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let step = CachedStep::new(dir.path(), "x-1", &serde_json::json!({"a": 1}));
        let done = |out: &Path| out.join("done").is_file().then_some(());
        assert!(step.cached(done).is_none());
        let staging = step.stage().unwrap();
        fs::write(staging.path().join("done"), b"").unwrap();
        assert!(step.cached(done).is_none(), "staged is not done");
        step.commit(staging, None).unwrap();
        assert!(step.cached(done).is_some());
    }
}
