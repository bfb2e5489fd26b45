//! A target host: the pinned glibc (vendor/sources.toml `[glibc]`) built from
//! source, with its patch series (`patches/glibc/2.11`), by the host's gcc
//! inside the sandbox, once per set of inputs.
//!
//! VendoredSource → PatchedTree → configure, make, make install (into an
//! empty root) → the unwinder library the old glibc loads at run time →
//! checks of the result → `<state>/hosts/glibc-<version>-<key>/`, holding
//! `lib64/ld-linux-x86-64.so.2`, `libc.so.6`, `libpthread.so.0`, … and
//! `host.json` (inputs and checks).
//!
//! The build sees the host's `/usr/include`: glibc compiles against its own
//! headers (`-nostdinc`), configure's generic probes and the kernel headers
//! (`linux/`, `asm/`) come from the host. glibc's configuration names folders
//! that do not exist on a build machine for the cache and configuration
//! files, so the loader of the host finds libraries only in the folders it
//! is given (`--library-path`), as an old system holding none of the build
//! machine's libraries would.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};
use elfcheck::{elf, GlibcVersion};
use serde::{Deserialize, Serialize};

use crate::{
    cached_step::CachedStep,
    fsutil,
    patch::{self, Series},
    pins::SourcePin,
    project::Project,
    run,
    sandbox::{Sandbox, SandboxKind},
    treehash,
};

/// Bump when the recipe below changes in a way the inputs do not show.
const RECIPE: u32 = 2;

/// Where the built libraries go inside the host root; what a 64-bit
/// SUSE/RHEL system of the time has.
pub const LIB_DIR: &str = "lib64";

/// glibc's configure options. `--prefix`, `--sysconfdir` and
/// `--localstatedir` name a folder no build machine has (the loader's
/// `ld.so.cache`, `ld.so.conf`, gconv modules and locale archive are looked
/// for there, and found nowhere); the libraries and the loader are installed
/// under `/lib64` (`slibdir`/`rtlddir` in `configparms`, see [`CONFIGPARMS`]).
pub const CONFIGURE: &[&str] = &[
    "--prefix=/opt/glibc-2.11-host/usr",
    "--sysconfdir=/opt/glibc-2.11-host/etc",
    "--localstatedir=/opt/glibc-2.11-host/var",
    "--enable-kernel=2.6.32",
    "--enable-add-ons=nptl,libidn",
    "--without-selinux",
    "--disable-profile",
    "--without-gd",
];

/// `configparms`, read by glibc's make: the shared libraries and the
/// loader in `/lib64` of the install root.
pub const CONFIGPARMS: &str = "slibdir=/lib64\nrtlddir=/lib64\n";

/// The compiler and its flags: no PIE (2009's start files and assembly
/// predate it), no stack protector and no fortification (glibc of the time
/// cannot be built with either), and an optimised build (glibc needs one).
pub const CC: &str = "gcc -fno-pie -no-pie";
pub const CFLAGS: &str = "-O2 -U_FORTIFY_SOURCE -fno-stack-protector";

/// glibc 2.11's `pthread_cancel`, `pthread_exit` and `backtrace` load
/// `libgcc_s.so.1` when first used; every system of the time has one. The
/// build machine's needs a newer glibc, so the host gets its own: the host
/// gcc's unwinder (`libgcc_eh.a`, which calls glibc 2.35's
/// `_dl_find_object`) linked against the host's own libc, with that one
/// function supplied on top of `dl_iterate_phdr` (see `crate::unwinder`).
pub const UNWINDER_SHIM: &str = "patches/glibc/2.11/libgcc_s-shim/dl_find_object.c";

/// The libraries every 2.11 system has, checked after the build.
pub const LIBRARIES: &[&str] = &[
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libpthread.so.0",
    "librt.so.1",
    "libm.so.6",
    "libdl.so.2",
    "libutil.so.1",
    "libcrypt.so.1",
    "libnsl.so.1",
    "libresolv.so.2",
    "libnss_files.so.2",
    "libnss_dns.so.2",
    "libgcc_s.so.1",
];

#[derive(Debug, Clone)]
pub struct HostOptions {
    pub sandbox: SandboxKind,
    pub jobs: usize,
    pub vendor: crate::vendor::VendorOptions,
}

/// A built target host.
#[derive(Debug, Clone)]
pub struct BuiltHost {
    /// `glibc-2.11.3`.
    pub name: String,
    /// The host root (`lib64/`, `usr/`, `host.json`).
    pub dir: PathBuf,
    pub record: HostRecord,
    /// Whether this call built it (false: found in the cache).
    pub built: bool,
}

/// `host.json`: what the host was built from and what was checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub schema: String,
    pub name: String,
    pub key: String,
    pub glibc: String,
    pub tree: String,
    pub patches: Vec<(String, String)>,
    pub tools: Vec<String>,
    pub configure: Vec<String>,
    pub cc: String,
    pub cflags: String,
    pub build_seconds: f64,
    /// The highest `GLIBC_` version libc.so.6 defines.
    pub highest_version: String,
    /// The versions `memcpy` is defined under.
    pub memcpy: Vec<String>,
}

/// The first line of `tool --version`, which the build depends on.
fn tool_version(tool: &str) -> Result<String> {
    let out = Command::new(tool)
        .arg("--version")
        .output()
        .with_context(|| format!("running {tool} --version: the host build needs {tool}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

/// The pinned glibc, or a clear error when the pins name none.
pub fn pin(project: &Project) -> Result<SourcePin> {
    let pins = project.pins()?;
    pins.glibc.clone().with_context(|| {
        format!(
            "{} has no [glibc] pin: a target host is built from one",
            crate::pins::PINS_FILE
        )
    })
}

/// Build the target host of the pinned glibc, or find it in the cache.
pub fn build(project: &Project, opts: &HostOptions) -> Result<BuiltHost> {
    let pin = pin(project)?;
    let name = pin.id();
    Sandbox::preflight(opts.sandbox)?;
    let tools = ["gcc", "ld", "make", "perl"]
        .iter()
        .map(|t| tool_version(t))
        .collect::<Result<Vec<_>>>()?;
    let series_dir = pin
        .patches_dir(&project.root)
        .with_context(|| format!("{name}: the pin names no patch series"))?;
    let series = Series::load(&series_dir)?;
    let shim_path = project.root.join(UNWINDER_SHIM);
    let shim = fs::read(&shim_path)
        .with_context(|| format!("reading {}: the host's unwinder shim", shim_path.display()))?;
    let mut patches = series.fingerprint();
    patches.push((UNWINDER_SHIM.to_string(), treehash::sha256_bytes(&shim)));
    let step = CachedStep::new(
        &project.state.join("hosts"),
        &name,
        &serde_json::json!({
            "recipe": RECIPE,
            "tree": pin.tree.as_str(),
            "patches": patches,
            "tools": tools,
            "configure": CONFIGURE,
            "configparms": CONFIGPARMS,
            "cc": CC,
            "cflags": CFLAGS,
            "sandbox": opts.sandbox,
        }),
    );
    let (key, dir) = (step.key.clone(), step.out.clone());
    // Found quietly: the command says "cached" itself.
    let found = fs::read_to_string(dir.join("host.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<HostRecord>(&text).ok())
        .filter(|record| record.key == key);
    if let Some(record) = found {
        return Ok(BuiltHost {
            name,
            dir,
            record,
            built: false,
        });
    }

    // The state lock guards the shared sources; the build itself writes
    // only its own staging folder.
    let source = {
        let _lock = project.lock()?;
        crate::vendor::vendor(project, &pin, &opts.vendor)?
    };
    let staging = step.stage()?;
    let src = staging.path().join("src");
    patch::apply_series(&source.dir, &series, &src)?;
    // One time for every file: patched files are not newer than what is
    // generated from them (configure from configure.in), so make
    // regenerates nothing, and the build does not depend on when it ran.
    fsutil::set_mtimes(&src, pin.release_epoch()?)?;
    let (root, build_seconds) = compile(project, &step, &name, staging.path(), &shim, opts)?;

    let checks = check(&root)?;
    let record = HostRecord {
        schema: "portable-redis/host".into(),
        name: name.clone(),
        key: key.clone(),
        glibc: pin.version.clone(),
        tree: pin.tree.as_str().to_string(),
        patches,
        tools,
        configure: CONFIGURE.iter().map(|s| s.to_string()).collect(),
        cc: CC.into(),
        cflags: CFLAGS.into(),
        build_seconds,
        highest_version: checks.highest,
        memcpy: checks.memcpy,
    };
    fsutil::write_atomic(
        &root.join("host.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    step.commit(staging, Some(Path::new("root")))?;
    Ok(BuiltHost {
        name,
        dir,
        record,
        built: true,
    })
}

/// Configure, make and install glibc from `work/src` into `work/root`
/// inside the sandbox, then link the host's `libgcc_s.so.1`; the root and
/// the seconds the build took.
fn compile(
    project: &Project,
    step: &CachedStep,
    name: &str,
    work: &Path,
    shim: &[u8],
    opts: &HostOptions,
) -> Result<(PathBuf, f64)> {
    let (src, obj, root) = (work.join("src"), work.join("obj"), work.join("root"));
    for d in [&obj, &root] {
        fs::create_dir_all(d)?;
    }
    if !Path::new("/usr/include/linux/version.h").is_file() {
        bail!("the host has no kernel headers (/usr/include/linux/version.h): apt-get install linux-libc-dev");
    }
    fs::write(obj.join("configparms"), CONFIGPARMS)?;
    let shim_dir = work.join("shim");
    fs::create_dir_all(&shim_dir)?;
    fs::write(shim_dir.join("dl_find_object.c"), shim)?;

    let mut sb = Sandbox::new(opts.sandbox);
    let src_in = sb.mount(&src, "/build/src", false);
    let obj_in = sb.mount(&obj, "/build/obj", true);
    let root_in = sb.mount(&root, "/build/root", true);
    let shim_in = sb.mount(&shim_dir, "/build/shim", false);
    sb.env("PATH", "/usr/bin:/bin")
        .env("HOME", "/tmp")
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("CC", CC)
        .env("CFLAGS", CFLAGS)
        .cwd(&obj_in);
    sb.host_headers();
    let logs = step.logs(project, &format!("host-{name}"));
    let start = Instant::now();
    let mut argv = vec![src_in.join("configure").display().to_string()];
    argv.extend(CONFIGURE.iter().map(|s| s.to_string()));
    run::logged(
        &format!("{name}: configure"),
        sb.command(&argv),
        &logs.join("configure.log"),
    )?;
    run::logged(
        &format!("{name}: make (about 7 min on 2 idle cores)"),
        sb.command(&["make".into(), format!("-j{}", opts.jobs)]),
        &logs.join("make.log"),
    )?;
    run::logged(
        &format!("{name}: make install"),
        sb.command(&[
            "make".into(),
            "install".into(),
            format!("install_root={}", root_in.display()),
            // No translations: msgfmt would write the catalogues into the
            // (read-only) source tree, and a missing one is not installed.
            "MSGFMT=:".into(),
        ]),
        &logs.join("install.log"),
    )?;
    // The unwinder: libgcc_eh.a's objects made visible, the shim, one
    // version script (crate::unwinder).
    let unwinder_dir = obj.join("unwinder");
    let defined = crate::unwinder::extract_unhidden(&gcc_file("libgcc_eh.a")?, &unwinder_dir)?;
    let reference_path = gcc_file("libgcc_s.so.1")?;
    let reference = fs::read(&reference_path)
        .with_context(|| format!("reading {}", reference_path.display()))?;
    let script = crate::unwinder::version_script(&reference, &defined)
        .with_context(|| format!("the version script from {}", reference_path.display()))?;
    fs::write(unwinder_dir.join("libgcc_s.map"), script)?;
    let lib = root_in.join(LIB_DIR);
    let link = format!(
        "set -e\n\
         cd {obj}/unwinder\n\
         gcc -O2 -fPIC -fno-stack-protector -c -o dl_find_object.o {shim}/dl_find_object.c\n\
         gcc -nostdlib -shared -Wl,-soname,libgcc_s.so.1 -Wl,--version-script=libgcc_s.map \
         -Wl,--hash-style=both -o {lib}/libgcc_s.so.1 *.o \
         {lib}/libc.so.6 {lib}/ld-linux-x86-64.so.2 $(gcc -print-libgcc-file-name)\n",
        obj = obj_in.display(),
        lib = lib.display(),
        shim = shim_in.display(),
    );
    run::logged(
        &format!("{name}: libgcc_s.so.1"),
        sb.command(&["sh".into(), "-ec".into(), link]),
        &logs.join("libgcc_s.log"),
    )?;
    Ok((root, start.elapsed().as_secs_f64()))
}

struct Checks {
    highest: String,
    memcpy: Vec<String>,
}

/// The host holds every library a 2.11 system has, its libc defines no
/// version above the pin's and `memcpy` only as `GLIBC_2.2.5`, and its
/// unwinder asks for no newer version either.
fn check(root: &Path) -> Result<Checks> {
    let lib = root.join(LIB_DIR);
    for l in LIBRARIES {
        let p = lib.join(l);
        if fs::metadata(&p).is_err() {
            bail!("the built host lacks {}", p.display());
        }
    }
    let libc_path = lib.join("libc.so.6");
    let data = fs::read(&libc_path).with_context(|| format!("reading {}", libc_path.display()))?;
    let libc = elf::read(&data).with_context(|| format!("reading {}", libc_path.display()))?;
    let highest = highest_glibc(libc.version_defs.iter().map(String::as_str))
        .with_context(|| format!("{} defines no GLIBC_ version", libc_path.display()))?;
    if highest > GlibcVersion::new(2, 11) {
        bail!(
            "{} defines GLIBC_{highest}: not a glibc 2.11 host",
            libc_path.display()
        );
    }
    let memcpy: Vec<String> = libc
        .exports
        .iter()
        .filter(|e| e.name == "memcpy")
        .filter_map(|e| e.version.clone())
        .collect();
    if memcpy != ["GLIBC_2.2.5"] {
        bail!(
            "{} defines memcpy as {memcpy:?}, not only as GLIBC_2.2.5",
            libc_path.display()
        );
    }
    crate::unwinder::check(&lib.join("libgcc_s.so.1"), GlibcVersion::new(2, 11))?;
    Ok(Checks {
        highest: highest.to_string(),
        memcpy,
    })
}

/// A file of the host gcc's installation (`gcc -print-file-name`).
fn gcc_file(name: &str) -> Result<PathBuf> {
    let out = Command::new("gcc")
        .arg(format!("-print-file-name={name}"))
        .output()
        .context("running gcc -print-file-name: the host build needs gcc")?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    // gcc prints the bare name when it has no such file.
    if !path.is_absolute() || !path.exists() {
        bail!("gcc has no {name} (gcc -print-file-name={name}): apt-get install gcc");
    }
    fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))
}

/// The highest of the `GLIBC_x.y[.z]` names (`GLIBC_PRIVATE` aside).
pub fn highest_glibc<'a>(names: impl Iterator<Item = &'a str>) -> Option<GlibcVersion> {
    names.filter_map(GlibcVersion::from_symbol_version).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_glibc_version_ignores_private_and_orders_numerically() {
        let names = ["GLIBC_2.2.5", "GLIBC_2.10", "GLIBC_PRIVATE", "GLIBC_2.9"];
        assert_eq!(
            highest_glibc(names.into_iter())
                .map(|v| v.to_string())
                .as_deref(),
            Some("2.10")
        );
        assert_eq!(highest_glibc(["GCC_3.0"].into_iter()), None);
    }

    #[test]
    fn a_host_without_its_libraries_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join(LIB_DIR)).unwrap();
        let e = format!("{:#}", check(d.path()).err().unwrap());
        assert!(
            e.contains("lacks") && e.contains("ld-linux-x86-64.so.2"),
            "{e}"
        );
    }
}
