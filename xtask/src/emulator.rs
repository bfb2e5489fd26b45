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

/// A folder to use as the emulator's root instead of one made from the
/// host's archive (for a host whose apt sources serve no packages of the
/// target's architecture).
pub const ROOT_ENV: &str = "PORTABLE_REDIS_EMULATOR_ROOT";

/// The runner for `target`: native on its own architecture, else its
/// emulator with the root made (once) in the state folder; `offline`, a
/// root not made yet is an error.
pub fn runner(project: &Project, target: &Target, offline: bool) -> Result<Runner> {
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
    let root = match std::env::var_os(ROOT_ENV) {
        Some(given) => given_root(Path::new(&given), emulator)?,
        None => root(project, emulator, offline)?,
    };
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

/// The root named by [`ROOT_ENV`], as an absolute path (the emulator runs
/// in the server's data folder): it must hold `lib/`.
fn given_root(given: &Path, emulator: &Emulator) -> Result<PathBuf> {
    let root = fs::canonicalize(given)
        .with_context(|| format!("${ROOT_ENV} is {}, which does not exist", given.display()))?;
    if !root.join("lib").exists() {
        bail!(
            "${ROOT_ENV} is {}, which has no lib/: give it a folder with Debian's {} packages \
             ({}) unpacked, and where their files are all below usr/, a link lib -> usr/lib",
            root.display(),
            emulator.debian_arch,
            emulator.packages.join(", ")
        );
    }
    Ok(root)
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
pub fn root(project: &Project, emulator: &Emulator, offline: bool) -> Result<PathBuf> {
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
    if offline {
        bail!(
            "the emulator's root {} is not made yet and --offline forbids fetching Debian's {} \
             packages: run once without --offline, or set ${ROOT_ENV} to a folder holding them unpacked",
            dest.display(),
            emulator.debian_arch
        );
    }
    let apt = AptOrigin {
        state: &project.apt(),
        downloads: &project.downloads(),
    };
    let debs = apt
        .binary_packages(&emulator.debian_arch, &emulator.packages)
        .with_context(|| {
            format!(
                "fetching Debian's {} packages {} for the emulator's root (where the host's \
                 archive serves no {0} packages, set ${ROOT_ENV} to a folder holding them unpacked)",
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
    staging.commit(&dest)?;
    Ok(dest)
}

/// The file in a finished root that lists the packages in it.
pub const ROOT_STAMP: &str = "portable-redis-root";

/// A system whose files all live below `/usr` (Debian from trixie on) has
/// `/lib` and the others as links into it, which base-files makes, not the
/// C library's package: the root gets them too, so `/lib/ld-linux-….so.1`
/// is found either way.
fn usr_aliases(root: &Path) -> Result<()> {
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

    /// Another architecture with no emulator named is an error that says
    /// what to add.
    #[test]
    fn a_foreign_target_without_an_emulator_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let project = Project::new(d.path().into(), d.path().join("state"));
        let other = if std::env::consts::ARCH == "aarch64" {
            "x86_64"
        } else {
            "aarch64"
        };
        let target = Target {
            name: "t".into(),
            zig: format!("{other}-linux-gnu.2.17"),
            ..Default::default()
        };
        let err = runner(&project, &target, false).unwrap_err().to_string();
        assert!(err.contains("names no emulator"), "{err}");
        let native = Target {
            zig: format!("{}-linux-gnu.2.17", std::env::consts::ARCH),
            ..target
        };
        assert!(runner(&project, &native, true).unwrap().described.is_none());
    }

    fn arm64() -> Emulator {
        Emulator {
            program: "qemu-aarch64".into(),
            cpu: "cortex-a57".into(),
            debian_arch: "arm64".into(),
            packages: vec!["libc6".into()],
        }
    }

    /// Offline, a root not made yet is an error that says how to get one,
    /// and nothing is fetched or written.
    #[test]
    fn offline_needs_a_root_made_before() {
        let d = tempfile::tempdir().unwrap();
        let project = Project::new(d.path().into(), d.path().join("state"));
        let err = root(&project, &arm64(), true).unwrap_err().to_string();
        assert!(err.contains("--offline") && err.contains(ROOT_ENV), "{err}");
        assert!(!d.path().join("state").exists());
    }

    /// A given root is made absolute; one without lib/ is refused with the
    /// fix for a root whose files are below usr/.
    #[test]
    fn a_given_root_is_absolute_and_has_lib() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("usr/lib")).unwrap();
        let err = given_root(d.path(), &arm64()).unwrap_err().to_string();
        assert!(err.contains("lib -> usr/lib"), "{err}");
        usr_aliases(d.path()).unwrap();
        let given = given_root(&d.path().join("usr/.."), &arm64()).unwrap();
        assert_eq!(given, fs::canonicalize(d.path()).unwrap());
        let err = given_root(&d.path().join("none"), &arm64())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn a_native_runner_runs_the_program_itself() {
        let c = Runner::native().command(Path::new("/bin/true"));
        assert_eq!(c.get_program(), "/bin/true");
        assert_eq!(c.get_args().count(), 0);
    }
}
