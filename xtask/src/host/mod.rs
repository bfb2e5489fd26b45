//! Old target hosts: the release run through an old C library's own loader.
//!
//! `cargo xtask host build [glibc-2.11]` builds a pinned glibc from source
//! with the host's gcc inside the sandbox (once, cached by its inputs) into
//! a host folder (`lib64/ld-linux-x86-64.so.2`, `libc.so.6`, …).
//! `cargo xtask host check [--host DIR]` runs every packaged program through
//! that folder's loader (`ld-linux-x86-64.so.2 --library-path …`; the kernel
//! is this machine's): a server over TCP and TLS, data, Lua, a fork for
//! BGSAVE, an AOF rewrite, a replica, a three-master cluster made by
//! redis-cli, redis-benchmark, redis-sentinel and the two checkers on the
//! files written. Anything the old loader prints is a failure.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};
use serde::Serialize;

mod checks;
mod runner;

use checks::Primary;
use runner::Runner;

/// The folders of a host copy that hold libraries, in search order: the
/// ones verify's `--against` searches.
const LIB_DIRS: &[&str] = elfcheck::hosts::SEARCH_DIRS;

/// A host's loader and library path.
#[derive(Debug, Clone)]
pub struct Loader {
    pub ld: PathBuf,
    pub library_path: String,
}

impl Loader {
    /// The loader of a host folder (a copy of an old system's `/lib64`,
    /// `/usr/lib64` … or a built host) and its library folders, plus `extra`
    /// folders searched after them.
    pub fn of(host: &Path, extra: &[PathBuf]) -> Result<Loader> {
        let ld = LIB_DIRS
            .iter()
            .map(|d| host.join(d).join("ld-linux-x86-64.so.2"))
            .find(|p| p.exists())
            .with_context(|| {
                format!(
                    "{} has no ld-linux-x86-64.so.2 in {}: give a copy of a host's library folders",
                    host.display(),
                    LIB_DIRS.join(", ")
                )
            })?;
        let mut dirs: Vec<String> = LIB_DIRS
            .iter()
            .map(|d| host.join(d))
            .filter(|p| p.is_dir())
            .map(|p| p.display().to_string())
            .collect();
        dirs.extend(extra.iter().map(|p| p.display().to_string()));
        Ok(Loader {
            ld,
            library_path: dirs.join(":"),
        })
    }

    /// `program` run through this loader (argv[0] stays the program's path,
    /// so redis-server's aliases keep their meaning), in the C locale: the
    /// locale of this machine's environment (`C.UTF-8`, built into glibc
    /// only since 2.35) need not exist on the host, and Redis 8 refuses to
    /// start when `setlocale` fails ("Failed to configure LOCALE").
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new(&self.ld);
        c.arg("--library-path")
            .arg(&self.library_path)
            .arg(program)
            .env("LC_ALL", "C");
        c
    }
}

/// Lines of a program's stderr that the loader wrote.
pub fn loader_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("error while loading shared libraries")
                || l.contains("ld-linux-x86-64.so.2:")
                || l.contains("version `GLIBC")
                || l.contains("relocation error")
                || l.contains("symbol lookup error")
                || l.contains("cannot open shared object file")
        })
        .map(str::to_string)
        .collect()
}

/// One check of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    /// `portable-redis/host-check`.
    pub schema: &'static str,
    pub host: String,
    pub loader: String,
    pub steps: Vec<Step>,
    /// Everything the loader printed, by program.
    pub loader_messages: Vec<String>,
    pub passed: bool,
}

impl fmt::Display for HostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "host {} (loader {}):", self.host, self.loader)?;
        for s in &self.steps {
            writeln!(
                f,
                "  {:<5} {:<34} {}",
                if s.ok { "ok" } else { "FAIL" },
                s.name,
                s.detail
            )?;
        }
        for m in &self.loader_messages {
            writeln!(f, "  loader: {m}")?;
        }
        writeln!(f, "{}", if self.passed { "passed" } else { "FAILED" })
    }
}

/// Run the release's programs in `bin` through `loader`, in `work`.
pub fn check(host: &Path, loader: &Loader, bin: &Path, work: &Path) -> Result<HostReport> {
    if work.exists() {
        crate::fsutil::make_writable_and_remove(work)?;
    }
    fs::create_dir_all(work)?;
    let mut r = Runner {
        loader,
        bin,
        work,
        stderr_files: Vec::new(),
        servers: Vec::new(),
    };
    let mut steps = Vec::new();
    let mut step = |name: &str, res: Result<String>| {
        let (ok, detail) = match res {
            Ok(d) => (true, d),
            Err(e) => (false, format!("{e:#}").replace('\n', " ")),
        };
        steps.push(Step {
            name: name.to_string(),
            ok,
            detail,
        });
        ok
    };

    let primary = Primary::new(work)?;
    let started = step("redis-server starts", primary.start(&mut r));
    if started {
        for (name, check) in checks::ON_THE_PRIMARY {
            step(name, check(&mut r, &primary));
        }
    }
    step(
        "a crash report with its stack trace",
        checks::crash_report(&mut r),
    );
    step(
        "redis-sentinel starts",
        checks::sentinel(&mut r, primary.port),
    );
    step(
        "redis-cli --cluster create (3 masters)",
        checks::cluster(&mut r),
    );

    for s in &mut r.servers {
        let _ = s.kill();
    }
    let messages = r.loader_messages();
    let passed = steps.iter().all(|s| s.ok) && messages.is_empty();
    Ok(HostReport {
        schema: "portable-redis/host-check",
        host: host.display().to_string(),
        loader: loader.ld.display().to_string(),
        steps,
        loader_messages: messages,
        passed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_loaders_words() {
        let stderr = "./redis-server: /lib64/libc.so.6: version `GLIBC_2.14' not found (required by ./redis-server)\n\
                      12:C 01 Jan # Redis is starting\n\
                      ./x: error while loading shared libraries: libssl.so.3: cannot open shared object file: No such file or directory\n";
        let m = loader_messages(stderr);
        assert_eq!(m.len(), 2, "{m:?}");
        assert!(m[0].contains("GLIBC_2.14"));
        assert!(m[1].contains("libssl.so.3"));
    }

    #[test]
    fn finds_the_loader_and_library_folders_of_a_host_copy() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("lib64")).unwrap();
        fs::create_dir_all(d.path().join("usr/lib64")).unwrap();
        fs::write(d.path().join("lib64/ld-linux-x86-64.so.2"), b"").unwrap();
        let l = Loader::of(d.path(), &[PathBuf::from("/extra")]).unwrap();
        assert!(l.ld.ends_with("lib64/ld-linux-x86-64.so.2"));
        let dirs: Vec<&str> = l.library_path.split(':').collect();
        assert_eq!(dirs.len(), 3);
        assert!(
            dirs[0].ends_with("lib64") && dirs[1].ends_with("usr/lib64") && dirs[2] == "/extra"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(format!("{:#}", Loader::of(empty.path(), &[]).unwrap_err())
            .contains("no ld-linux-x86-64.so.2"));
    }
}
