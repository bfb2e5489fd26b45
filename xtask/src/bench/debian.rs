//! Debian's own build of the release's Redis line, to measure against:
//! `redis-server`, `redis-tools` and the shared libraries they need (their
//! `Multi-Arch: same` dependencies, followed through), from the suites of
//! the line's Redis pin (`debian.suites` in vendor/sources.toml: bookworm's
//! for 7.0, forky and sid for 8.0), unpacked into a root of their own. The
//! server runs through that root's loader with that root's libraries only:
//! Debian's whole run time, whatever release the host runs, the same way
//! under callgrind.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{
    debian::AptOrigin, debroot, emulator::Runner, fsutil, pins::SourcePin, project::Project,
};

/// The packages whose files are the server: `redis-server` holds only the
/// link to `redis-check-rdb`, which `redis-tools` holds.
pub const SERVER_PACKAGES: [&str; 2] = ["redis-server", "redis-tools"];

/// Debian's server in its root, and how it starts.
pub struct DebianServer {
    pub binary: PathBuf,
    pub runner: Runner,
    /// What `--version` says.
    pub version: String,
}

/// Debian's server of `pin`'s version, from the root `dir/<pin id>` (made
/// once; staged, then renamed into place).
pub fn server(project: &Project, pin: &SourcePin, dir: &Path) -> Result<DebianServer> {
    let debian = pin.debian.as_ref().with_context(|| {
        format!(
            "the {} pin in vendor/sources.toml has no `debian` source package, whose suites \
             hold the build the bench compares against: give it one",
            pin.id()
        )
    })?;
    let arch = debian_arch()?;
    let root = dir.join(pin.id());
    if !root.join(debroot::ROOT_STAMP).is_file() {
        let apt = AptOrigin {
            state: &project.apt(),
            downloads: &project.downloads(),
        };
        let roots = SERVER_PACKAGES.map(String::from);
        let packages = apt
            .library_closure_in(&debian.suites, arch, &roots)
            .with_context(|| {
                format!(
                    "finding Debian's redis-server and its libraries in {}",
                    debian.suites.join(", ")
                )
            })?;
        let names: Vec<String> = packages.iter().map(|s| s.package.clone()).collect();
        eprintln!(
            "  debian: {} from {}, with {}",
            packages
                .first()
                .map(|s| format!("{} {}", s.package, s.version))
                .unwrap_or_default(),
            debian.suites.join(", "),
            names[SERVER_PACKAGES.len().min(names.len())..].join(", ")
        );
        let debs = apt.binary_packages_in(&debian.suites, arch, &names)?;
        if fs::symlink_metadata(&root).is_ok() {
            fsutil::make_writable_and_remove(&root)?;
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        debroot::unpack(&debs, &root)?;
    }
    let binary = root.join("usr/bin/redis-server");
    let data = fs::read(&binary).with_context(|| {
        format!(
            "reading {} (remove {} to unpack Debian's packages again)",
            binary.display(),
            root.display()
        )
    })?;
    let facts = elfcheck::elf::read(&data)
        .with_context(|| format!("reading {} as ELF", binary.display()))?;
    let interpreter = facts
        .interpreter
        .with_context(|| format!("{} names no loader (PT_INTERP)", binary.display()))?;
    let loader = root.join(interpreter.trim_start_matches('/'));
    let libs = library_path(&root)?;
    let runner = Runner::through(
        vec![
            loader.clone().into_os_string(),
            "--library-path".into(),
            libs.clone().into(),
        ],
        format!("Debian's loader {interpreter}, with the libraries of its root only"),
    );
    missing_libraries(&loader, &libs, &binary, &root)?;
    let out = runner
        .command(&binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !version.contains(&format!("v={} ", pin.version)) {
        bail!(
            "{} reports `{version}`{}, not {} as the release\n\
             fix: remove {} so the bench fetches the suites' current packages ({})",
            binary.display(),
            if out.status.success() {
                String::new()
            } else {
                format!(
                    " ({}: {})",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            },
            pin.version,
            root.display(),
            debian.suites.join(", ")
        );
    }
    eprintln!("  debian: {version}");
    Ok(DebianServer {
        binary,
        runner,
        version,
    })
}

/// Debian's name of this machine's architecture.
fn debian_arch() -> Result<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Ok("amd64"),
        "aarch64" => Ok("arm64"),
        other => bail!("the bench knows no Debian architecture for {other}"),
    }
}

/// The root's library folders, as the loader's `--library-path`: the
/// architecture's own (`lib/x86_64-linux-gnu`), then the general ones,
/// each once (`lib` is a link to `usr/lib` in a root of a system whose
/// files are all below `/usr`).
pub fn library_path(root: &Path) -> Result<String> {
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in [
        format!("usr/lib/{triplet}"),
        format!("lib/{triplet}"),
        "usr/lib".into(),
        "lib".into(),
    ] {
        let Ok(real) = fs::canonicalize(root.join(d)) else {
            continue;
        };
        if !dirs.contains(&real) {
            dirs.push(real);
        }
    }
    if dirs.is_empty() {
        bail!("{} has no lib/ or usr/lib/", root.display());
    }
    Ok(dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":"))
}

/// An error naming every library `binary` needs that the root lacks
/// (`ld.so --list`'s `not found`).
fn missing_libraries(loader: &Path, libs: &str, binary: &Path, root: &Path) -> Result<()> {
    let out = Command::new(loader)
        .args(["--library-path", libs, "--list"])
        .arg(binary)
        .output()
        .with_context(|| format!("running {} --list", loader.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let missing = not_found(&text);
    if !missing.is_empty() || !out.status.success() {
        bail!(
            "{} needs {} that the root {} lacks{}: a dependency the closure of its packages \
             left out (they are listed in {})",
            binary.display(),
            if missing.is_empty() {
                "libraries".to_string()
            } else {
                missing.join(", ")
            },
            root.display(),
            if out.status.success() {
                String::new()
            } else {
                format!(
                    " ({}: {})",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            },
            root.join(debroot::ROOT_STAMP).display()
        );
    }
    Ok(())
}

/// The libraries `ld.so --list` did not find.
pub fn not_found(list: &str) -> Vec<String> {
    list.lines()
        .filter(|l| l.contains("=> not found"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaders_list_names_what_it_did_not_find() {
        let list = "\tlinux-vdso.so.1 (0x00007f)\n\tliblzf.so.1 => not found\n\tlibc.so.6 => /r/usr/lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\tlibssl.so.3 => not found\n";
        assert_eq!(not_found(list), ["liblzf.so.1", "libssl.so.3"]);
        assert!(not_found("\tlibc.so.6 => /lib/libc.so.6 (0x1)\n").is_empty());
    }

    /// A root whose lib is a link to usr/lib names each folder once, the
    /// architecture's own first.
    #[test]
    fn the_library_path_names_each_folder_once() {
        let d = tempfile::tempdir().unwrap();
        let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
        fs::create_dir_all(d.path().join("usr/lib").join(&triplet)).unwrap();
        std::os::unix::fs::symlink("usr/lib", d.path().join("lib")).unwrap();
        let real = fs::canonicalize(d.path()).unwrap();
        assert_eq!(
            library_path(d.path()).unwrap(),
            format!("{0}/usr/lib/{triplet}:{0}/usr/lib", real.display())
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(library_path(empty.path()).is_err());
    }
}
