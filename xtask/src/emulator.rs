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
    debroot,
    pins::{Emulator, Target},
    project::Project,
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

    /// Programs started by `prefix` (a loader or an emulator, and its
    /// arguments before the program), described as `described`.
    pub fn through(prefix: Vec<OsString>, described: String) -> Runner {
        Runner {
            prefix,
            described: Some(described),
        }
    }

    /// The words that run `program`: the prefix, then the program (then
    /// add its arguments), for a tool that starts it (valgrind).
    pub fn argv(&self, program: &Path) -> Vec<OsString> {
        let mut words = self.prefix.clone();
        words.push(program.into());
        words
    }

    /// A command that runs `program` (then add its arguments).
    pub fn command(&self, program: &Path) -> Command {
        let words = self.argv(program);
        let mut c = Command::new(&words[0]);
        c.args(&words[1..]);
        c
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
    Ok(Runner::through(
        vec![
            program.into_os_string(),
            "-L".into(),
            root.into_os_string(),
            "-cpu".into(),
            emulator.cpu.clone().into(),
        ],
        format!("{} -cpu {}", emulator.program, emulator.cpu),
    ))
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
    let dest = debroot::keyed(
        &project.state.join("emulators"),
        &emulator.debian_arch,
        &[emulator.debian_arch.clone(), emulator.packages.join(" ")],
    );
    if dest.join(debroot::ROOT_STAMP).is_file() {
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
    debroot::unpack(&debs, &dest)?;
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        crate::debroot::usr_aliases(d.path()).unwrap();
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
