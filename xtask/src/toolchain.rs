//! Stage 3, toolchain: the pinned zig, provisioned from the `ziglang` wheel on
//! PyPI (pip download into the state folder, SHA-256 checked) or taken from
//! `--zig PATH` when its version matches the pin; plus the `cc`, `c++`, `ar` and
//! `ranlib` wrapper scripts that call the zig binary directly with the
//! release's target, the pinned CPU and optimisation level.

use std::{
    fs,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{
    fsutil,
    pins::{CompilerRt, Target, ZigPin},
    project::Project,
    treehash,
};

/// A zig installation that matches the pin.
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// Folder holding the `zig` binary and its `lib/`.
    pub dir: PathBuf,
    pub version: String,
    /// Where it came from and its hash, e.g. `wheel sha256:…` or `--zig sha256:…`.
    pub identity: String,
    pub pin: ZigPin,
    /// What the wrappers compile for.
    pub target: Target,
}

impl Toolchain {
    pub fn zig(&self) -> PathBuf {
        self.dir.join("zig")
    }

    /// zig's musl sources (`lib/libc/musl`), which a static target links in.
    pub fn musl_dir(&self) -> PathBuf {
        self.dir.join("lib/libc/musl")
    }

    /// zig's glibc ABI lists (`lib/libc/glibc/abilists`), the reference for verify.
    pub fn abilists(&self) -> PathBuf {
        self.dir.join("lib/libc/glibc/abilists")
    }

    /// Wrapper scripts calling `zig_path` (the zig binary as the build sees it).
    pub fn wrappers(&self, zig_path: &Path) -> Vec<(&'static str, String)> {
        let zig = zig_path.display();
        let ZigPin { cpu, opt, .. } = &self.pin;
        let target = &self.target.zig;
        let compiler = |sub: &str| {
            let call = format!("exec {zig} {sub} -target {target} -mcpu={cpu} {opt} \"$@\"");
            match self.target.compiler_rt {
                CompilerRt::Zig => format!("#!/bin/sh\n{call}\n"),
                // Only a link names the library: given to a compile, zig
                // makes an archive of the object and the library. The word
                // after an `-X…` option is that tool's, not the driver's.
                CompilerRt::WithoutLibc => format!(
                    "#!/bin/sh\nskip=\nfor a in \"$@\"; do\n  \
                     if [ -n \"$skip\" ]; then skip=; continue; fi\n  \
                     case $a in\n    \
                     -X*) skip=1 ;;\n    \
                     -c|-S|-E|-M|-MM|-r|--compile|--preprocess|--assemble) {call} ;;\n  \
                     esac\ndone\n{call} {}\n",
                    crate::compiler_rt::link_args()
                ),
            }
        };
        let tool = |sub: &str| format!("#!/bin/sh\nexec {zig} {sub} \"$@\"\n");
        vec![
            ("cc", compiler("cc")),
            ("c++", compiler("c++")),
            ("ar", tool("ar")),
            ("ranlib", tool("ranlib")),
        ]
    }
}

/// Write the wrappers into `dir` (replacing it atomically).
pub fn write_wrappers(dir: &Path, wrappers: &[(&str, String)]) -> Result<()> {
    let staging = fsutil::Staging::beside(dir)?;
    for (name, body) in wrappers {
        let p = staging.path().join(name);
        fs::write(&p, body).with_context(|| format!("writing {}", p.display()))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755))?;
    }
    staging.commit(dir)
}

/// Provision the pinned zig, its wrappers compiling for `target`.
pub fn provision(
    project: &Project,
    pin: &ZigPin,
    target: &Target,
    zig: Option<&Path>,
) -> Result<Toolchain> {
    if let Some(zig) = zig {
        return from_path(pin, target, zig);
    }
    let dir = project.toolchains().join(format!(
        "zig-{}-{}",
        pin.zig_version,
        &pin.wheel_sha256[..12.min(pin.wheel_sha256.len())]
    ));
    if !dir.join("zig").is_file() {
        let wheel = fetch_wheel(project, pin)?;
        unpack_wheel(&wheel, &dir)?;
    }
    let version = zig_version(&dir.join("zig"))?;
    if version != pin.zig_version {
        bail!(
            "{} reports version {version}, the pin says {}",
            dir.join("zig").display(),
            pin.zig_version
        );
    }
    Ok(Toolchain {
        dir,
        version,
        identity: format!("ziglang wheel {} sha256:{}", pin.wheel, pin.wheel_sha256),
        pin: pin.clone(),
        target: target.clone(),
    })
}

fn from_path(pin: &ZigPin, target: &Target, zig: &Path) -> Result<Toolchain> {
    let real =
        fs::canonicalize(zig).with_context(|| format!("--zig {}: no such file", zig.display()))?;
    let version = zig_version(&real)?;
    if version != pin.zig_version {
        bail!(
            "--zig {} is zig {version}; the pin in vendor/sources.toml needs {}. Drop --zig to use the pinned wheel",
            zig.display(),
            pin.zig_version
        );
    }
    let dir = real
        .parent()
        .context("zig binary has no folder")?
        .to_path_buf();
    let sha = treehash::sha256_file(&real)?;
    Ok(Toolchain {
        dir,
        version,
        identity: format!("--zig binary sha256:{sha}"),
        pin: pin.clone(),
        target: target.clone(),
    })
}

fn zig_version(zig: &Path) -> Result<String> {
    let sh = Shell::new()?;
    let out = cmd!(sh, "{zig} version")
        .quiet()
        .read()
        .with_context(|| format!("running `{} version`", zig.display()))?;
    Ok(out.trim().to_string())
}

/// The wheel in the state folder, downloaded with pip when missing.
fn fetch_wheel(project: &Project, pin: &ZigPin) -> Result<PathBuf> {
    let wheels = project.toolchains().join("wheels");
    fs::create_dir_all(&wheels)?;
    let wheel = wheels.join(&pin.wheel);
    if wheel.is_file() && treehash::sha256_file(&wheel)? == pin.wheel_sha256 {
        return Ok(wheel);
    }
    let tmp = fsutil::Staging::beside(&wheel)?;
    let sh = Shell::new()?;
    let spec = format!("ziglang=={}", pin.zig_version);
    let dest = tmp.path();
    eprintln!("  zig: downloading {} with pip", pin.wheel);
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| cmd!(sh, "{p} -m pip --version").quiet().ignore_stdout().ignore_stderr().run().is_ok())
        .context("neither python3 nor python has pip; install it (`apt-get install python3-pip`) or pass --zig PATH")?;
    cmd!(
        sh,
        "{python} -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_12_x86_64 -d {dest} {spec}"
    )
    .quiet()
    .run()
    .with_context(|| format!("pip download {spec}"))?;
    let got = tmp.path().join(&pin.wheel);
    if !got.is_file() {
        bail!(
            "pip did not fetch {} (the pin's wheel name); check vendor/sources.toml",
            pin.wheel
        );
    }
    let sha = treehash::sha256_file(&got)?;
    if sha != pin.wheel_sha256 {
        bail!(
            "{}: SHA-256 is {sha}, the pin says {}",
            pin.wheel,
            pin.wheel_sha256
        );
    }
    fs::rename(&got, &wheel)?;
    Ok(wheel)
}

/// Unpack the wheel's `ziglang/` folder to `dest`, keeping execute bits.
fn unpack_wheel(wheel: &Path, dest: &Path) -> Result<()> {
    let file = fs::File::open(wheel).with_context(|| format!("opening {}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a zip file", wheel.display()))?;
    let staging = fsutil::Staging::beside(dest)?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let Some(name) = entry.enclosed_name() else {
            bail!(
                "{}: entry `{}` leaves the archive",
                wheel.display(),
                entry.name()
            );
        };
        let Ok(rel) = name.strip_prefix("ziglang") else {
            continue;
        };
        let out = staging.path().join(rel);
        if entry.is_dir() {
            fs::create_dir_all(&out)?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
        let exec = entry.unix_mode().map(|m| m & 0o111 != 0).unwrap_or(false);
        fs::set_permissions(
            &out,
            fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }),
        )?;
    }
    if !staging.path().join("zig").is_file() {
        bail!("{} has no ziglang/zig", wheel.display());
    }
    staging.commit(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> ZigPin {
        ZigPin {
            zig_version: "0.17.1".into(),
            wheel: "w.whl".into(),
            wheel_sha256: "00".into(),
            cpu: "baseline".into(),
            opt: "-O2".into(),
        }
    }

    fn target() -> Target {
        Target {
            name: "x86_64-linux-glibc2.11".into(),
            zig: "x86_64-linux-gnu.2.11".into(),
            policy: "policy/x86_64-linux-gnu.2.11.toml".into(),
            openssl: "linux-x86_64".into(),
            jemalloc: "--with-lg-page=12".into(),
            runs_on: "x86_64 Linux, glibc 2.11 and later".into(),
            ..Default::default()
        }
    }

    #[test]
    fn wrappers_call_zig_directly_with_target_cpu_and_opt() {
        let tc = Toolchain {
            dir: "/z".into(),
            version: "0.17.1".into(),
            identity: String::new(),
            pin: pin(),
            target: target(),
        };
        let w = tc.wrappers(Path::new("/toolchain/zig/zig"));
        let cc = &w.iter().find(|(n, _)| *n == "cc").unwrap().1;
        assert_eq!(
            cc,
            "#!/bin/sh\nexec /toolchain/zig/zig cc -target x86_64-linux-gnu.2.11 -mcpu=baseline -O2 \"$@\"\n"
        );
        assert!(!cc.contains("python"));
        let ar = &w.iter().find(|(n, _)| *n == "ar").unwrap().1;
        assert_eq!(ar, "#!/bin/sh\nexec /toolchain/zig/zig ar \"$@\"\n");
    }

    /// With zig's runtime without the C library, only a link names the
    /// library (a fake zig prints what it was given).
    #[test]
    fn only_a_link_names_the_runtime_without_the_c_library() {
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("zig");
        fs::write(&fake, "#!/bin/sh\necho \"$@\"\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let tc = Toolchain {
            dir: d.path().into(),
            version: "0.17.1".into(),
            identity: String::new(),
            pin: pin(),
            target: Target {
                compiler_rt: CompilerRt::WithoutLibc,
                ..target()
            },
        };
        let bin = d.path().join("bin");
        write_wrappers(&bin, &tc.wrappers(&fake)).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new(bin.join("cc"))
                .args(args)
                .env("ZIG_GLOBAL_CACHE_DIR", "/cache")
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap()
        };
        let library = "-lcompiler_rt_without_libc";
        let folder = format!("-L/cache/{}", crate::compiler_rt::folder());
        for compile in [
            &["-c", "x.c"][..],
            &["-E", "x.c"],
            &["-MM", "x.c"],
            &["-S", "x.c"],
        ] {
            let said = run(compile);
            assert!(
                said.starts_with("cc -target x86_64-linux-gnu.2.11"),
                "{said}"
            );
            assert!(!said.contains(library), "{said}");
        }
        for link in [
            &["-pie", "x.o", "-o", "x"][..],
            &["-pie", "x.o", "-Xlinker", "-E", "-o", "x"],
        ] {
            let said = run(link);
            let args = link.join(" ");
            assert!(
                said.trim_end()
                    .ends_with(&format!("{args} {folder} {library}")),
                "{said}"
            );
        }
        for compile in [
            &["-o", "x.o", "-c", "x.c"][..],
            &["-r", "a.o", "b.o", "-o", "ab.o"],
        ] {
            let said = run(compile);
            assert!(!said.contains(library), "{said}");
        }
        let out = std::process::Command::new(bin.join("cc"))
            .args(["x.o", "-o", "x"])
            .env_remove("ZIG_GLOBAL_CACHE_DIR")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{said}");
        assert!(said.contains("the wrapper needs the zig cache"), "{said}");
    }

    #[test]
    fn a_zig_of_another_version_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let fake = d.path().join("zig");
        fs::write(&fake, "#!/bin/sh\necho 0.11.0\n").unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        let err = format!("{:#}", from_path(&pin(), &target(), &fake).unwrap_err());
        assert!(err.contains("0.11.0") && err.contains("0.17.1"), "{err}");
    }
}
