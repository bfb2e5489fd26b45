//! Where things live: the repository, and the git-ignored state folder that
//! holds downloads, unpacked trees, the toolchain and build outputs.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result};

use crate::pins::Pins;

/// Environment variable naming the state folder (default `target/portable`).
pub const STATE_ENV: &str = "PORTABLE_REDIS_STATE";

#[derive(Debug, Clone)]
pub struct Project {
    /// The repository root (where `vendor/sources.toml` is).
    pub root: PathBuf,
    /// Downloads, unpacked sources, toolchain, build cache.
    pub state: PathBuf,
    /// `vendor/sources.toml`, read once: see [`Project::pins`].
    pins: OnceLock<Pins>,
}

impl Project {
    pub fn new(root: PathBuf, state: PathBuf) -> Project {
        Project {
            root,
            state,
            pins: OnceLock::new(),
        }
    }

    /// The same checkout with another state folder (and the pins already read).
    pub fn with_state(&self, state: PathBuf) -> Project {
        Project {
            state,
            ..self.clone()
        }
    }

    /// The checkout's pins, read on first use and then the same for the whole
    /// run (a command that rewrites `vendor/sources.toml` reads it anew with
    /// [`Pins::load`]).
    pub fn pins(&self) -> Result<&Pins> {
        if let Some(p) = self.pins.get() {
            return Ok(p);
        }
        let loaded = Pins::load(&self.root)?;
        Ok(self.pins.get_or_init(|| loaded))
    }

    /// The checkout the current folder is in (the one with
    /// `vendor/sources.toml` and `xtask/`), else the one this xtask was built from.
    pub fn discover(state: Option<PathBuf>) -> Result<Project> {
        let cwd = std::env::current_dir()?;
        let is_root = |d: &Path| {
            d.join(crate::pins::PINS_FILE).is_file() && d.join("xtask/Cargo.toml").is_file()
        };
        let root = match cwd.ancestors().find(|d| is_root(d)) {
            Some(r) => r.to_path_buf(),
            None => Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .context("xtask is not inside a workspace")?
                .to_path_buf(),
        };
        let state = state
            .or_else(|| std::env::var_os(STATE_ENV).map(PathBuf::from))
            .unwrap_or_else(|| root.join("target/portable"));
        let state = if state.is_absolute() {
            state
        } else {
            std::env::current_dir()?.join(state)
        };
        fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
        Ok(Project::new(root, state))
    }

    pub fn downloads(&self) -> PathBuf {
        self.state.join("downloads")
    }
    pub fn sources(&self) -> PathBuf {
        self.state.join("sources")
    }
    pub fn toolchains(&self) -> PathBuf {
        self.state.join("toolchain")
    }
    /// zig's cache: private to the build, kept between builds.
    pub fn zig_cache(&self) -> PathBuf {
        self.state.join("zig-cache")
    }
    pub fn builds(&self) -> PathBuf {
        self.state.join("builds")
    }
    pub fn apt(&self) -> PathBuf {
        self.state.join("apt")
    }
    pub fn scratch(&self) -> PathBuf {
        self.state.join("scratch")
    }

    /// Hold the state folder for this process: a second `dist` waits instead of
    /// building into the same folders.
    pub fn lock(&self) -> Result<StateLock> {
        use fs4::fs_std::FileExt;
        let path = self.state.join("lock");
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        if !file.try_lock_exclusive().unwrap_or(false) {
            eprintln!("waiting for another xtask using {}", self.state.display());
            file.lock_exclusive()
                .with_context(|| format!("locking {}", path.display()))?;
        }
        Ok(StateLock { _file: file })
    }
}

/// Released when dropped.
pub struct StateLock {
    _file: File,
}
