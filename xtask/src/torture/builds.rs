//! The three `redis-server` builds a torture run compares:
//!
//! - **patched**: the packaged release of the normal pipeline (`dist`);
//! - **upstream**: upstream as released, the same zig build in the same
//!   sandbox with only the line's portability patches (no loader patch, no
//!   other fix, no security queue; its own cache key). The CVE
//!   reproductions of `cargo test` run it too;
//! - **asan**: the patched tree built with the host's gcc and
//!   AddressSanitizer, cached by the hash of its inputs too.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{bail, Context, Result};

use crate::{
    archive,
    build::BuiltRedis,
    cached_step::CachedStep,
    dist::{self, DistOptions},
    fsutil::{self, Staging},
    patch::{self, Series},
    pins::SourcePin,
    project::Project,
    run, security,
    session::{BuildSession, SessionOptions},
    vendor::{self, VendorOptions},
};

use super::probe::Target;

/// The series entry this torture proves.
pub const LOADER_PATCH: &str = "0003-cluster-config-loader.patch";

/// Bump when the sanitizer recipe below changes in a way the inputs do not show.
const ASAN_RECIPE: u32 = 1;

/// Make variables of the sanitizer build: Redis's own `SANITIZER=address`
/// (which also selects libc malloc), no TLS, and no memcpy pin (the host
/// build has no old-glibc target, and the pin would hide memcpy from the
/// sanitizer's interceptor).
const ASAN_MAKE: &[&str] = &[
    "SANITIZER=address",
    "MALLOC=libc",
    "BUILD_TLS=no",
    "USE_SYSTEMD=no",
    "OPTIMIZATION=-O1",
    "SYMVER_CFLAGS=",
    "V=1",
];

pub struct BuildOptions {
    pub redis: Option<String>,
    pub vendor: VendorOptions,
    /// Patched binaries to use instead of running `dist`.
    pub patched_bin: Option<PathBuf>,
    pub asan: bool,
    pub jobs: usize,
}

pub struct Builds {
    pub pin: SourcePin,
    pub patched: Target,
    pub upstream: Target,
    pub asan: Option<Target>,
    /// Folder of the patched release's binaries (redis-cli is used too).
    pub bin: PathBuf,
}

pub fn prepare(project: &Project, opts: &BuildOptions) -> Result<Builds> {
    let bin = match &opts.patched_bin {
        // Absolute: servers run with their own working folders.
        Some(dir) => fs::canonicalize(dir)
            .with_context(|| format!("--bin {}: no such folder", dir.display()))?,
        None => packaged_release(project, opts)?,
    };
    for p in ["redis-server", "redis-cli"] {
        if !bin.join(p).is_file() {
            bail!(
                "{} holds no {p}; give the release's bin/ folder",
                bin.display()
            );
        }
    }
    let session = BuildSession::open(
        project,
        &SessionOptions {
            jobs: opts.jobs,
            vendor: opts.vendor.clone(),
            ..SessionOptions::new(opts.redis.clone())
        },
    )?;
    let (pin, series) = (&session.redis, &session.series);
    if !series.patches.iter().any(|p| p.name == LOADER_PATCH) {
        bail!(
            "{} does not list {LOADER_PATCH}: nothing to compare against upstream",
            series.dir.join("series").display()
        );
    }
    let upstream = upstream_build(&session)?;
    let asan = if opts.asan {
        Some(asan_build(project, pin, series, opts.jobs, || {
            Ok(vendor::vendor(project, pin, &opts.vendor)?.dir)
        })?)
    } else {
        None
    };
    Ok(Builds {
        patched: Target {
            label: "patched".into(),
            server: bin.join("redis-server"),
            sanitizer: false,
        },
        upstream: Target {
            label: format!("upstream {}", pin.version),
            server: upstream.bin.join("redis-server"),
            sanitizer: false,
        },
        asan: asan.map(|server| Target {
            label: "patched, ASan".into(),
            server,
            sanitizer: true,
        }),
        bin,
        pin: pin.clone(),
    })
}

/// Upstream as released, built as the release is (the same zig build in the
/// same sandbox, the same OpenSSL): the line's portability patches only, no
/// fix of ours and no security queue; cached by its own key.
fn upstream_build(session: &BuildSession) -> Result<BuiltRedis> {
    let (_, upstream) = session.build(&session.series.portability_only())?;
    Ok(upstream)
}

/// The `bin/` folder of the upstream build of `line` (see
/// [`upstream_build`]), built when missing: what the CVE reproductions run
/// beside the release.
pub fn upstream_bin(project: &Project, line: Option<&str>, jobs: usize) -> Result<PathBuf> {
    let session = BuildSession::open(
        project,
        &SessionOptions {
            jobs,
            ..SessionOptions::new(line.map(String::from))
        },
    )?;
    Ok(upstream_build(&session)?.bin)
}

/// The `bin/` folder of upstream as released (the portability patches only)
/// built by the host's gcc with AddressSanitizer: what the CVE
/// reproductions run where a normal build's memory error need not crash.
pub fn upstream_asan_bin(project: &Project, line: Option<&str>, jobs: usize) -> Result<PathBuf> {
    let pins = project.pins()?;
    let pin = pins.redis(line)?.clone();
    let vendor = VendorOptions::default();
    let _lock = project.lock()?;
    let series = security::series(project, &pin, &vendor)?.portability_only();
    let server = asan_build(project, &pin, &series, jobs, || {
        Ok(vendor::vendor(project, &pin, &vendor)?.dir)
    })?;
    server
        .parent()
        .map(PathBuf::from)
        .context("the sanitizer build's server has no folder")
}

/// `cargo xtask dist` as usual, then the packaged binaries, unpacked.
fn packaged_release(project: &Project, opts: &BuildOptions) -> Result<PathBuf> {
    let dist_opts = DistOptions {
        jobs: opts.jobs,
        ..DistOptions::new(project, opts.redis.clone(), opts.vendor.clone())
    };
    let release = dist::run(project, &dist_opts)?;
    let dest = project.scratch().join("torture-release");
    let staging = Staging::beside(&dest)?;
    archive::unpack(&release.tarball, staging.path())?;
    staging.commit(&dest)?;
    Ok(dest.join(&release.name).join("bin"))
}

/// The patched tree built by the host's gcc with AddressSanitizer.
fn asan_build(
    project: &Project,
    pin: &SourcePin,
    series: &Series,
    jobs: usize,
    source: impl FnOnce() -> Result<PathBuf>,
) -> Result<PathBuf> {
    let cc = host_compiler()?;
    let step = CachedStep::new(
        &project.builds(),
        &format!("{}-asan", pin.id()),
        &serde_json::json!({
            "step": "redis-asan",
            "recipe": ASAN_RECIPE,
            "tree": pin.tree,
            "version": pin.version,
            "patches": series.fingerprint(),
            "cc": cc,
            "make": ASAN_MAKE,
        }),
    );
    let server = step.out.join("bin/redis-server");
    if let Some(server) = step.cached(|_| server.is_file().then(|| server.clone())) {
        return Ok(server);
    }
    let staging = step.stage()?;
    let src = staging.path().join("src");
    patch::apply_series(&source()?, series, &src)?;
    let logs = step.own_logs(project);
    let mut make = Command::new("make");
    make.current_dir(src.join("src"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", staging.path())
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .arg(format!("-j{jobs}"))
        .args(ASAN_MAKE)
        .arg("redis-server");
    run::logged(
        &format!("{} ASan build", pin.id()),
        make,
        &logs.join("build.log"),
    )?;
    let built = src.join("src/redis-server");
    if !built.is_file() {
        bail!(
            "the sanitizer build finished without {}; see {}",
            built.display(),
            logs.join("build.log").display()
        );
    }
    fs::create_dir_all(staging.path().join("bin"))?;
    fs::copy(&built, staging.path().join("bin/redis-server"))?;
    fsutil::make_writable_and_remove(&src)?;
    step.commit(staging, None)?;
    Ok(server)
}

/// The host compiler's identity (`gcc --version`), part of the cache key.
fn host_compiler() -> Result<String> {
    let out = Command::new("gcc")
        .arg("--version")
        .output()
        .context("running `gcc --version`: the sanitizer build needs gcc (apt-get install gcc), or pass --no-asan")?;
    if !out.status.success() {
        bail!(
            "`gcc --version` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string())
}
