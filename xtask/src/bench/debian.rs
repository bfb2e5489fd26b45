//! Debian's own build of the release's Redis line, to measure against:
//! `redis-server`, `redis-tools` and the shared libraries they need (their
//! `Multi-Arch: same` dependencies, followed through), from the suites of
//! the line's Redis pin (`debian.suites` in vendor/sources.toml: bookworm's
//! for 7.0, forky and sid for 8.0), unpacked into a root of their own. The
//! server runs through that root's loader with that root's libraries only:
//! Debian's whole run time, whatever release the host runs, the same way
//! under callgrind.

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{debian::AptOrigin, debroot, emulator::Runner, pins::SourcePin, project::Project};

/// The packages whose files are the server: `redis-server` holds only the
/// link to `redis-check-rdb`, which `redis-tools` holds.
pub const SERVER_PACKAGES: [&str; 2] = ["redis-server", "redis-tools"];

/// Debian's server in its root, and how it starts.
pub struct DebianServer {
    pub binary: PathBuf,
    pub runner: Runner,
    /// The root it runs from (every library it loads is in it).
    pub root: PathBuf,
    /// What `--version` says.
    pub version: String,
}

/// Debian's server of `pin`'s version, from a root below `dir` named by the
/// pin and keyed by its suites and this architecture (made once; staged,
/// then renamed into place).
pub fn server(project: &Project, pin: &SourcePin, dir: &Path) -> Result<DebianServer> {
    let debian = pin.debian.as_ref().with_context(|| {
        format!(
            "the {} pin in vendor/sources.toml has no `debian` source package, whose suites \
             hold the build the bench compares against: give it one",
            pin.id()
        )
    })?;
    let arch = debian_arch()?;
    let root = debroot::keyed(
        dir,
        &pin.id(),
        &[
            debian.suites.join(" "),
            arch.to_string(),
            SERVER_PACKAGES.join(" "),
        ],
    );
    if !root.join(debroot::ROOT_STAMP).is_file() {
        let apt = AptOrigin {
            state: &project.apt(),
            downloads: &project.downloads(),
        };
        let index = apt.binary_index(&debian.suites, arch)?;
        let packages = index.library_closure(&SERVER_PACKAGES.map(String::from))?;
        let wanted: Vec<String> = packages
            .iter()
            .map(|s| format!("{}={}", s.package, s.version))
            .collect();
        eprintln!(
            "  debian: from {}: {}",
            debian.suites.join(", "),
            wanted.join(", ")
        );
        let debs = index.download(&wanted)?;
        debroot::unpack(&debs, &root)?;
    }
    // Absolute: the server runs in its own working folder.
    let root = fs::canonicalize(&root).with_context(|| format!("reading {}", root.display()))?;
    let binary = root.join("usr/bin/redis-server");
    let again = || {
        format!(
            "remove {} to unpack Debian's packages again",
            root.display()
        )
    };
    let data =
        fs::read(&binary).with_context(|| format!("reading {} ({})", binary.display(), again()))?;
    let facts = elfcheck::elf::read(&data)
        .with_context(|| format!("reading {} as ELF ({})", binary.display(), again()))?;
    let interpreter = facts.interpreter.with_context(|| {
        format!(
            "{} names no loader (PT_INTERP): not a dynamic program ({})",
            binary.display(),
            again()
        )
    })?;
    let loader = root.join(interpreter.trim_start_matches('/'));
    // The root's folders only: the loader would fall back on the host's
    // cache and its default folders, and neither may lend a library.
    let prefix: Vec<OsString> = vec![
        loader.clone().into(),
        "--inhibit-cache".into(),
        "--library-path".into(),
        library_path(&root)?.into(),
    ];
    outside_libraries(&prefix, &binary, &root)?;
    let runner = Runner::through(
        prefix,
        format!("Debian's loader {interpreter}, with the libraries of its root"),
    );
    let out = runner
        .command(&binary)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", binary.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        bail!(
            "{} --version failed ({}): {}\nfix: {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            again()
        );
    }
    if !version.contains(&format!("v={} ", pin.version)) {
        bail!(
            "{} reports `{version}`, not {} as the release: the comparison is between the \
             same version\nfix: {} (the suites {} may serve it now), or upgrade the pin to \
             the version they serve (cargo xtask upgrade)",
            binary.display(),
            pin.version,
            again(),
            debian.suites.join(", ")
        );
    }
    eprintln!("  debian: {version}");
    Ok(DebianServer {
        binary,
        runner,
        root,
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

/// An error naming every library `binary` needs that its loader (`prefix`)
/// does not find in `root` (`ld.so --list`: `not found`, or a path outside).
fn outside_libraries(prefix: &[OsString], binary: &Path, root: &Path) -> Result<()> {
    let out = Command::new(&prefix[0])
        .args(&prefix[1..])
        .arg("--list")
        .arg(binary)
        .output()
        .with_context(|| format!("running {:?} --list", prefix[0]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let outside = outside(&text, root);
    if !outside.is_empty() || !out.status.success() {
        bail!(
            "{} needs {} that the root {} lacks{}\nfix: remove the root to unpack it again; if \
             that does not help, the closure of its packages (xtask/src/debian/packages.rs) \
             leaves out the package that holds it (the root's packages are listed in {})",
            binary.display(),
            if outside.is_empty() {
                "libraries".to_string()
            } else {
                outside.join(", ")
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

/// The libraries of `ld.so --list` output not found, or found outside
/// `root` (the host's), each with where it was found.
pub fn outside(list: &str, root: &Path) -> Vec<String> {
    list.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(" => ")?;
            let path = rest.split(" (").next().unwrap_or(rest).trim();
            if path == "not found" {
                return Some(format!("{name} (not found)"));
            }
            let real = fs::canonicalize(path).unwrap_or_else(|_| PathBuf::from(path));
            (!real.starts_with(root)).then(|| format!("{name} (found at {path})"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loaders_list_names_what_is_not_in_the_root() {
        let list = "\tlinux-vdso.so.1 (0x00007f)\n\tliblzf.so.1 => not found\n\tlibc.so.6 => /r/usr/lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\tlibssl.so.3 => /usr/lib/x86_64-linux-gnu/libssl.so.3 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 => /r/usr/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            outside(list, Path::new("/r")),
            [
                "liblzf.so.1 (not found)",
                "libssl.so.3 (found at /usr/lib/x86_64-linux-gnu/libssl.so.3)"
            ]
        );
        assert!(outside("\tlibc.so.6 => /r/lib/libc.so.6 (0x1)\n", Path::new("/r")).is_empty());
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
