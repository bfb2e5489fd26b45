//! The sealed build environment: bubblewrap with no network, the host's
//! headers, `/usr/local` and pkg-config folders hidden, sources and outputs at
//! fixed paths, and an environment cleared then set explicitly.
//!
//! `--sandbox none` runs the same commands on the host (same cleared
//! environment, host paths); it is recorded in BUILDINFO.json.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Result};
use serde::Serialize;

/// Host folders hidden under an empty tmpfs inside the sandbox.
const HIDDEN: &[&str] = &[
    "/usr/include",
    "/usr/local",
    "/usr/lib/pkgconfig",
    "/usr/share/pkgconfig",
    "/usr/lib/x86_64-linux-gnu/pkgconfig",
    "/usr/lib64/pkgconfig",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SandboxKind {
    /// bubblewrap: no network, fixed paths, host headers hidden.
    Bwrap,
    /// No isolation (explicit opt-out, recorded in BUILDINFO.json).
    None,
}

impl fmt::Display for SandboxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SandboxKind::Bwrap => "bwrap",
            SandboxKind::None => "none",
        })
    }
}

/// A host folder and where the build sees it.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub inside: PathBuf,
    pub writable: bool,
}

/// One sealed environment for one build step.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub kind: SandboxKind,
    /// Leave the host's `/usr/include` visible (a C library's own build:
    /// configure's probes and the kernel headers come from the host).
    host_headers: bool,
    mounts: Vec<Mount>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

impl Sandbox {
    /// Check that the sandbox can run here; a clear error otherwise.
    pub fn preflight(kind: SandboxKind) -> Result<()> {
        if kind == SandboxKind::None {
            return Ok(());
        }
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()))
            .unwrap_or(false);
        if !found {
            bail!(
                "bubblewrap (`bwrap`) is not installed; the build runs inside it.\n\
                 fix: sudo apt-get install bubblewrap\n\
                 or build without isolation: cargo xtask dist --sandbox none (recorded in BUILDINFO.json)"
            );
        }
        let probe = Command::new("bwrap")
            .args([
                "--unshare-all",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "true",
            ])
            .output();
        match probe {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => bail!(
                "bwrap is installed but cannot create a sandbox here: {}\n\
                 fix: allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), run as root, \
                 or pass --sandbox none",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => bail!("running bwrap: {e}"),
        }
    }

    pub fn new(kind: SandboxKind) -> Sandbox {
        Sandbox {
            kind,
            host_headers: false,
            mounts: Vec::new(),
            env: Vec::new(),
            cwd: PathBuf::from("/"),
        }
    }

    /// Keep the host's `/usr/include` visible.
    pub fn host_headers(&mut self) -> &mut Self {
        self.host_headers = true;
        self
    }

    /// Make `host` visible; returns the path the build uses for it.
    pub fn mount(&mut self, host: &Path, inside: &str, writable: bool) -> PathBuf {
        let inside_path = match self.kind {
            SandboxKind::Bwrap => PathBuf::from(inside),
            SandboxKind::None => host.to_path_buf(),
        };
        self.mounts.push(Mount {
            host: host.to_path_buf(),
            inside: inside_path.clone(),
            writable,
        });
        inside_path
    }

    /// Where a path the build used (`/build/src/…`) is on the host: through
    /// the deepest mount that holds it.
    pub fn host_path(&self, inside: &Path) -> PathBuf {
        self.mounts
            .iter()
            .filter_map(|m| Some((m, inside.strip_prefix(&m.inside).ok()?)))
            .max_by_key(|(m, _)| m.inside.components().count())
            .map(|(m, rest)| m.host.join(rest))
            .unwrap_or_else(|| inside.to_path_buf())
    }

    pub fn env(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    pub fn cwd(&mut self, inside: &Path) -> &mut Self {
        self.cwd = inside.to_path_buf();
        self
    }

    /// `argv` inside the sandbox, with umask 022.
    pub fn command(&self, argv: &[String]) -> Command {
        let mut shell = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "umask 022 && exec \"$@\"".into(),
            "sh".into(),
        ];
        shell.extend(argv.iter().cloned());
        match self.kind {
            SandboxKind::None => {
                let mut c = Command::new(&shell[0]);
                c.args(&shell[1..]).env_clear().current_dir(&self.cwd);
                for (k, v) in &self.env {
                    c.env(k, v);
                }
                c
            }
            SandboxKind::Bwrap => {
                let mut c = Command::new("bwrap");
                c.args(self.bwrap_args()).arg("--").args(&shell).env_clear();
                c
            }
        }
    }

    fn bwrap_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        push(&[
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--hostname",
            "portable-redis",
        ]);
        push(&["--ro-bind", "/usr", "/usr"]);
        // Merged-/usr hosts have /bin → usr/bin etc.; others get a read-only view.
        for top in ["/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
            match std::fs::read_link(top) {
                Ok(target) => push(&["--symlink", &target.to_string_lossy(), top]),
                Err(_) if Path::new(top).is_dir() => push(&["--ro-bind", top, top]),
                Err(_) => {}
            }
        }
        for etc in [
            "/etc/alternatives",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
        ] {
            if Path::new(etc).exists() {
                push(&["--ro-bind", etc, etc]);
            }
        }
        for hidden in HIDDEN {
            if self.host_headers && *hidden == "/usr/include" {
                continue;
            }
            if Path::new(hidden).is_dir() {
                push(&["--tmpfs", hidden]);
            }
        }
        push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        for m in &self.mounts {
            let flag = if m.writable { "--bind" } else { "--ro-bind" };
            push(&[flag, &m.host.to_string_lossy(), &m.inside.to_string_lossy()]);
        }
        push(&["--chdir", &self.cwd.to_string_lossy()]);
        for (k, v) in &self.env {
            push(&["--setenv", k, v]);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_paths_map_back_to_the_host_through_the_deepest_mount() {
        let mut sb = Sandbox::new(SandboxKind::Bwrap);
        sb.mount(Path::new("/h/stage"), "/build", true);
        sb.mount(Path::new("/h/src"), "/build/src", true);
        assert_eq!(
            sb.host_path(Path::new("/build/src/src/server.o")),
            Path::new("/h/src/src/server.o")
        );
        assert_eq!(
            sb.host_path(Path::new("/build/openssl/lib/libssl.a")),
            Path::new("/h/stage/openssl/lib/libssl.a")
        );
        assert_eq!(
            sb.host_path(Path::new("/usr/lib/x")),
            Path::new("/usr/lib/x")
        );
        let mut none = Sandbox::new(SandboxKind::None);
        let inside = none.mount(Path::new("/h/src"), "/build/src", true);
        assert_eq!(none.host_path(&inside.join("a.o")), Path::new("/h/src/a.o"));
    }

    #[test]
    fn bwrap_hides_host_headers_and_fixes_paths() {
        let mut sb = Sandbox::new(SandboxKind::Bwrap);
        let src = sb.mount(Path::new("/somewhere/src"), "/build/src", true);
        assert_eq!(src, Path::new("/build/src"));
        sb.env("LC_ALL", "C").cwd(&src);
        let cmd = sb.command(&["make".into()]);
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("--unshare-all"));
        assert!(joined.contains("--bind /somewhere/src /build/src"));
        assert!(joined.contains("--setenv LC_ALL C"));
        if Path::new("/usr/include").is_dir() {
            assert!(joined.contains("--tmpfs /usr/include"), "{joined}");
        }
        assert!(args.ends_with(&["make".to_string()]));
    }

    #[test]
    fn none_uses_host_paths_and_a_cleared_environment() {
        let mut sb = Sandbox::new(SandboxKind::None);
        let src = sb.mount(Path::new("/somewhere/src"), "/build/src", true);
        assert_eq!(src, Path::new("/somewhere/src"));
        sb.env("TZ", "UTC");
        let cmd = sb.command(&["true".into()]);
        let envs: Vec<_> = cmd.get_envs().collect();
        assert_eq!(envs.len(), 1);
    }
}
