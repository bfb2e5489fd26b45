//! The tool's own speed: a cold build step against the same compile by a plain
//! shell script, a `dist` with nothing changed, and a `dist` after one Redis
//! patch changed.
//!
//! Every measured build gets a state folder of its own that links the main
//! state's toolchain and verified source trees (so no download is timed) and
//! starts from a copy of the main state's zig cache, which holds zig's
//! one-time builds of its C runtime for the target (so neither side pays for
//! them). Both sides of the cold comparison compile inside the same bubblewrap
//! sandbox, with the same wrappers, flags, paths and environment.

use std::{
    fmt::Write as _,
    fs,
    os::unix::fs::symlink,
    path::Path,
    process::{Command, Stdio},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};

use super::report::{Row, Section, Target, Unit};
use crate::{
    build::{self, BuildContext, BuildFlags, BuiltOpenssl, BuiltRedis},
    dist::{self, RunRecord},
    fsutil,
    patch::Series,
    pins::SourcePin,
    project::Project,
    run,
    sandbox::SandboxKind,
    session::{BuildSession, SessionOptions},
    vendor::{self, VendorOptions},
};

mod cold;
pub use cold::*;

/// The xtask's first compile on a fresh clone must take at most this long.
pub const FRESH_COMPILE_TARGET_SECONDS: f64 = 90.0;
/// A `dist` with nothing to do must take at most this long.
pub const NOOP_TARGET_SECONDS: f64 = 2.0;
/// A `dist` after a Redis patch changed, against its own Redis compile step.
pub const INCREMENTAL_TARGET_RATIO: f64 = 1.15;

#[derive(Debug, Clone)]
pub struct PipelineOptions {
    pub redis: Option<String>,
    pub sandbox: SandboxKind,
    pub jobs: usize,
    pub cold_rounds: usize,
    pub noop_rounds: usize,
    pub incremental_rounds: usize,
}

/// A measured build's origins: the trees are there already.
const OFFLINE: VendorOptions = VendorOptions {
    mirror: None,
    offline: true,
};

impl PipelineOptions {
    fn session(&self, vendor: VendorOptions) -> SessionOptions {
        SessionOptions {
            sandbox: self.sandbox,
            jobs: self.jobs,
            vendor,
            ..SessionOptions::new(self.redis.clone())
        }
    }
}

/// How a private state folder gets its zig cache.
enum ZigCache<'a> {
    /// A copy of this folder (a cold build that still has zig's runtime).
    CopyOf(&'a Path),
    /// The main state's own cache (an ordinary incremental build).
    Shared,
}

/// A state folder for one measured run, below `dir`.
fn private_state(main: &Project, dir: &Path, zig: ZigCache) -> Result<Project> {
    if dir.exists() {
        fsutil::make_writable_and_remove(dir)?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let state = main.with_state(dir.to_path_buf());
    for (from, to) in [
        (main.toolchains(), state.toolchains()),
        (main.sources(), state.sources()),
        (main.downloads(), state.downloads()),
    ] {
        symlink(&from, &to).with_context(|| format!("linking {}", to.display()))?;
    }
    match zig {
        ZigCache::CopyOf(template) => {
            fsutil::copy_tree(template, &state.zig_cache()).context("copying the warm zig cache")?
        }
        ZigCache::Shared => symlink(main.zig_cache(), state.zig_cache())?,
    }
    Ok(state)
}

/// The first `cargo xtask` of a fresh clone: the xtask compiled into an
/// empty target folder, with cargo's registry cache warm (as after `cargo
/// fetch`), in the dev profile `cargo xtask` uses.
pub fn fresh_compile(main: &Project, work: &Path, opts: &PipelineOptions) -> Result<Section> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut times = Vec::new();
    for round in 0..opts.cold_rounds {
        let target = work.join(format!("fresh-target-{round}"));
        if target.exists() {
            fsutil::make_writable_and_remove(&target)?;
        }
        let mut cmd = Command::new(&cargo);
        cmd.args(["build", "--package", "xtask", "--locked"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(&main.root);
        let secs = timed(cmd, &work.join(format!("fresh-compile-{round}.log")))?;
        eprintln!("  fresh compile {}: {secs:.1}s", round + 1);
        times.push(secs);
        fsutil::make_writable_and_remove(&target)?;
    }
    let row = Row::single(
        "`cargo build -p xtask` into an empty target folder",
        Unit::Seconds,
        times,
        Some(Target::MedianAtMost {
            value: FRESH_COMPILE_TARGET_SECONDS,
        }),
    )?;
    Ok(Section {
        id: "compile".into(),
        title: "The xtask's first compile, as on a fresh clone".into(),
        a: "cargo".into(),
        b: None,
        rows: vec![row],
        notes: vec![
            "What a new user waits for before `cargo xtask dist` builds anything: every \
             dependency and the xtask, compiled into an empty target folder with cargo's \
             registry cache already filled (downloads are not timed)."
                .into(),
        ],
    })
}

/// `dist` with nothing to do, as a user runs it.
pub fn noop(main: &Project, opts: &PipelineOptions) -> Result<Section> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let pins = main.pins()?;
    let pin = pins.redis(opts.redis.as_deref())?;
    let mut times = Vec::new();
    // Round 0 is not timed: it lets cargo rebuild the xtask if its sources
    // changed since this bench started.
    for round in 0..=opts.noop_rounds {
        let mut cmd = Command::new(&cargo);
        cmd.args(["xtask", "--state"])
            .arg(&main.state)
            .arg("dist")
            .current_dir(&main.root);
        if let Some(r) = &opts.redis {
            cmd.args(["--redis", r]);
        }
        let log = main.state.join("logs/bench-noop.log");
        let secs = timed(cmd, &log)?;
        if !RunRecord::load(&main.state, pins, pin)?.nothing_built() {
            bail!(
                "the no-op dist built something (its run record: {}); see {}",
                RunRecord::path(&main.state, &dist::release_name(pin, pins.target(None)?))
                    .display(),
                log.display()
            );
        }
        if round == 0 {
            eprintln!("  no-op dist (cargo settles, not timed): {secs:.2}s");
            continue;
        }
        eprintln!("  no-op dist {round}: {secs:.2}s");
        times.push(secs);
    }
    let row = Row::single(
        "`cargo xtask dist`, nothing changed",
        Unit::Seconds,
        times,
        Some(Target::MedianAtMost {
            value: NOOP_TARGET_SECONDS,
        }),
    )?;
    Ok(Section {
        id: "noop".into(),
        title: "No-op `dist` (cargo's own check, cache look-ups, strip, verify, package, smoke)"
            .into(),
        a: "dist".into(),
        b: None,
        rows: vec![row],
        notes: vec![],
    })
}

/// Run `cmd` with its output in `log`; wall time in seconds.
fn timed(mut cmd: Command, log: &Path) -> Result<f64> {
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent)?;
    }
    let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "{:?} failed ({status}); last lines of {}:\n{}",
            cmd.get_program(),
            log.display(),
            run::tail(log, 30).unwrap_or_default()
        );
    }
    Ok(secs)
}

/// One incremental round, measured from its run record.
struct Round {
    total: f64,
    redis_step: f64,
    rebuilt_openssl: bool,
    /// The patch changed.
    touched: String,
    /// The record's stages, for the notes.
    stages: String,
}

/// A scratch checkout with one patch changed, a private state holding the
/// cached OpenSSL build, and `dist` run in it by `exe`, in `dir`.
fn incremental_round(
    main: &Project,
    exe: &Path,
    dir: &Path,
    openssl_build: &Path,
    pin: &SourcePin,
    opts: &PipelineOptions,
    round: usize,
) -> Result<Round> {
    let pins = main.pins()?;
    let state = private_state(main, &dir.join("state"), ZigCache::Shared)?;
    let openssl_name = openssl_build
        .file_name()
        .context("the OpenSSL build folder has no name")?;
    fs::create_dir_all(state.builds())?;
    symlink(openssl_build, state.builds().join(openssl_name))?;
    let checkout = dir.join("checkout");
    let touched = scratch_checkout(&main.root, &checkout, pin)?;

    let mut cmd = Command::new(exe);
    cmd.arg("--state")
        .arg(&state.state)
        .arg("dist")
        .arg("--out")
        .arg(dir.join("dist"))
        .current_dir(&checkout);
    if let Some(r) = &opts.redis {
        cmd.args(["--redis", r]);
    }
    let log = dir.join("dist.log");
    eprintln!(
        "  incremental {}: dist in {} ({touched} changed)",
        round + 1,
        checkout.display()
    );
    let total = timed(cmd, &log)?;
    let record = RunRecord::load(&state.state, pins, pin)?;
    let redis_step = ["compile", "link"]
        .iter()
        .map(|s| record.seconds_of(&format!("{} {s}", pin.id())))
        .sum::<Option<f64>>()
        .with_context(|| {
            format!(
                "no Redis compile and link steps in {}: was Redis rebuilt? (see {})",
                RunRecord::path(&state.state, &record.release).display(),
                log.display()
            )
        })?;
    let mut rebuilt_openssl = false;
    for e in fs::read_dir(state.builds())? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!("{}-", pins.openssl.id())) && !e.file_type()?.is_symlink() {
            rebuilt_openssl = true;
        }
    }
    eprintln!(
        "  incremental {}: {total:.1}s (Redis compile {redis_step:.1}s)",
        round + 1
    );
    let parts: Vec<String> = record
        .stages
        .iter()
        .map(|s| format!("{} {:.1}s", s.name, s.seconds))
        .collect();
    let stages = format!(
        "run {}: {:.1}s ({})",
        round + 1,
        record.seconds,
        parts.join(", ")
    );
    fsutil::make_writable_and_remove(dir)?;
    Ok(Round {
        total,
        redis_step,
        rebuilt_openssl,
        touched,
        stages,
    })
}

/// `dist` after one Redis patch changed, in a scratch copy of the checkout:
/// OpenSSL must come from the cache, and the run should take about as long
/// as its own Redis compile.
pub fn incremental(
    main: &Project,
    work: &Path,
    openssl_build: &Path,
    opts: &PipelineOptions,
) -> Result<Section> {
    let pin = main.pins()?.redis(opts.redis.as_deref())?;
    // The running image, copied: `cargo xtask` in the no-op part may have
    // replaced the file this process was started from.
    let exe = work.join("xtask");
    fs::copy("/proc/self/exe", &exe).context("copying the running xtask binary")?;
    let (mut totals, mut redis_steps) = (Vec::new(), Vec::new());
    let mut rebuilt_openssl = false;
    let mut touched = String::new();
    let mut stages = Vec::new();
    for round in 0..opts.incremental_rounds {
        let r = incremental_round(
            main,
            &exe,
            &work.join(format!("incremental-{round}")),
            openssl_build,
            pin,
            opts,
            round,
        )?;
        rebuilt_openssl |= r.rebuilt_openssl;
        touched = r.touched;
        stages.push(r.stages);
        totals.push(r.total);
        redis_steps.push(r.redis_step);
    }
    let mut row = Row::compare(
        &format!("`dist` after changing {touched}"),
        Unit::Seconds,
        totals,
        redis_steps,
        Some(Target::RatioAtMost {
            value: INCREMENTAL_TARGET_RATIO,
        }),
    )?;
    if rebuilt_openssl {
        row = row.fail("OpenSSL was rebuilt");
    }
    Ok(Section {
        id: "incremental".into(),
        title: "Incremental `dist` after changing one Redis patch (whole `dist` against its Redis compile step)"
            .into(),
        a: "dist".into(),
        b: Some("Redis compile".into()),
        rows: vec![row],
        notes: vec![format!(
            "In a scratch copy of the checkout; OpenSSL {}: the whole `dist` (patch, build, \
             strip, verify, package, smoke) against the Redis `make` steps (compile and link) inside the same run \
             (target: at most {INCREMENTAL_TARGET_RATIO:.2}×). `dist`'s own account of its \
             stages: {}.",
            if rebuilt_openssl {
                "was REBUILT"
            } else {
                "came from the cache"
            },
            stages.join("; ")
        )],
    })
}

/// Copy what `dist` reads of a checkout (pins, patches, the target policy,
/// the xtask marker) to `dest` and change the first patch of `pin`'s series;
/// the patch's path.
fn scratch_checkout(root: &Path, dest: &Path, pin: &SourcePin) -> Result<String> {
    // The rest is compiled into the xtask.
    for dir in ["vendor", "patches", "policy"] {
        fsutil::copy_tree(&root.join(dir), &dest.join(dir))?;
    }
    fs::create_dir_all(dest.join("xtask"))?;
    fs::copy(root.join("xtask/Cargo.toml"), dest.join("xtask/Cargo.toml"))?;
    let series_dir = pin
        .patches_dir(dest)
        .with_context(|| format!("the {} pin names no patch series", pin.id()))?;
    let series = Series::load(&series_dir)?;
    let first = series
        .patches
        .first()
        .with_context(|| format!("{} lists no patch", series_dir.display()))?;
    let path = series_dir.join(&first.name);
    let text = fs::read_to_string(&path)?;
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    fs::write(
        &path,
        format!("Changed by cargo xtask bench ({nonce}).\n{text}"),
    )?;
    Ok(path
        .strip_prefix(dest)
        .unwrap_or(&path)
        .display()
        .to_string())
}

#[cfg(test)]
mod tests;
