//! Running a target's programs on this machine: directly when the target's
//! architecture is the machine's, else under qemu-user (`[[target]]`'s
//! `emulator`) with a root holding Debian's C library for that architecture,
//! unpacked from the host release's own packages (checked against its signed
//! index). The root is the C library the programs load; their own files stay
//! where they are.

use std::{
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{
    debian::AptOrigin,
    fsutil::{self, Staging},
    pins::{Emulator, Target},
    project::Project,
    treehash,
};

/// How a target's programs start here.
#[derive(Debug, Clone)]
pub struct Runner {
    /// The emulator and its arguments before the program; empty to run it
    /// directly.
    prefix: Vec<OsString>,
    /// Said in reports: `qemu-aarch64 -cpu cortex-a57`, or nothing.
    pub described: Option<String>,
}

impl Runner {
    /// Programs of this machine's own architecture.
    pub fn native() -> Runner {
        Runner {
            prefix: Vec::new(),
            described: None,
        }
    }

    /// A command that runs `program` (then add its arguments).
    pub fn command(&self, program: &Path) -> Command {
        match self.prefix.split_first() {
            None => Command::new(program),
            Some((emulator, args)) => {
                let mut c = Command::new(emulator);
                c.args(args).arg(program);
                c
            }
        }
    }
}

/// The runner for `target`: native on its own architecture, else its
/// emulator with the root made (once) in the state folder.
pub fn runner(project: &Project, target: &Target) -> Result<Runner> {
    if target.arch() == std::env::consts::ARCH {
        return Ok(Runner::native());
    }
    let Some(emulator) = &target.emulator else {
        bail!(
            "{} programs cannot run on this {} machine and the target names no emulator; \
             give its [[target]] in vendor/sources.toml an `emulator`",
            target.arch(),
            std::env::consts::ARCH
        );
    };
    let program = find_program(&emulator.program)?;
    let root = root(project, emulator)?;
    Ok(Runner {
        prefix: vec![
            program.into_os_string(),
            "-L".into(),
            root.into_os_string(),
            "-cpu".into(),
            emulator.cpu.clone().into(),
        ],
        described: Some(format!("{} -cpu {}", emulator.program, emulator.cpu)),
    })
}

/// `name` on PATH, or an error that says how to install it.
fn find_program(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{name} is not installed: it runs the target's programs here (apt-get install qemu-user)")
        })
}

/// The root of `emulator`'s packages: `emulators/<arch>-<key>` in the state
/// folder, made once (staged, then renamed into place).
pub fn root(project: &Project, emulator: &Emulator) -> Result<PathBuf> {
    let key = treehash::sha256_bytes(
        format!("{}\n{}", emulator.debian_arch, emulator.packages.join(" ")).as_bytes(),
    );
    let dest =
        project
            .state
            .join("emulators")
            .join(format!("{}-{}", emulator.debian_arch, &key[..12]));
    if dest.join(ROOT_STAMP).is_file() {
        return Ok(dest);
    }
    let apt = AptOrigin {
        state: &project.apt(),
        downloads: &project.downloads(),
    };
    let debs = apt
        .binary_packages(&emulator.debian_arch, &emulator.packages)
        .with_context(|| {
            format!(
                "fetching Debian's {} packages {} for the emulator's root",
                emulator.debian_arch,
                emulator.packages.join(", ")
            )
        })?;
    let staging = Staging::beside(&dest)?;
    let mut names = String::new();
    for deb in &debs {
        let out = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(staging.path())
            .output()
            .context("running dpkg-deb (Debian's dpkg package)")?;
        if !out.status.success() {
            bail!(
                "dpkg-deb -x {} failed: {}",
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
    fsutil::write_atomic(&staging.path().join(ROOT_STAMP), names.as_bytes())?;
    staging.commit(&dest)?;
    Ok(dest)
}

/// The file in a finished root that lists the packages in it.
pub const ROOT_STAMP: &str = "portable-redis-root";

/// Absolute symbolic links in `dir` (the loader's `/lib/ld-linux-….so.1`
/// points at `/lib/<triple>/…`) made relative to `root`, so they stay inside
/// it: the emulator looks a path up in the root, the kernel follows links
/// from `/`.
fn relative_links(root: &Path, dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path)?;
            if let Ok(inside) = target.strip_prefix("/") {
                let depth = path
                    .parent()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map_or(0, |p| p.components().count());
                let relative: PathBuf = std::iter::repeat_n(Path::new(".."), depth)
                    .collect::<PathBuf>()
                    .join(inside);
                fs::remove_file(&path)?;
                std::os::unix::fs::symlink(relative, &path)?;
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
        relative_links(root, root).unwrap();
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

    #[test]
    fn a_native_runner_runs_the_program_itself() {
        let c = Runner::native().command(Path::new("/bin/true"));
        assert_eq!(c.get_program(), "/bin/true");
        assert_eq!(c.get_args().count(), 0);
    }
}
