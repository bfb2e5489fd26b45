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

/// zig's cache as the warm-up left it: the main state's cache for this
/// toolchain without what later compiles added (zig keeps C objects it
/// compiled, which would make a "cold" build partly warm). Entries are kept
/// when they are not newer than the warm-up's stamp.
fn warm_zig_template(main: &BuildSession, dest: &Path) -> Result<()> {
    let cache = main.context().zig_cache();
    let stamp = cache.join(build::ZIG_WARM_STAMP);
    let warmed = fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .with_context(|| {
            format!(
                "{} is missing: the warm-up dist should have made it",
                stamp.display()
            )
        })?;
    let key = cache
        .strip_prefix(main.project.zig_cache())
        .with_context(|| {
            format!(
                "{} is not inside {}",
                cache.display(),
                main.project.zig_cache().display()
            )
        })?;
    let out = dest.join(key);
    if dest.exists() {
        fsutil::make_writable_and_remove(dest)?;
    }
    fs::create_dir_all(&out)?;
    fs::copy(&stamp, out.join(build::ZIG_WARM_STAMP))?;
    for sub in ["b", "h", "o", "z"] {
        let from = cache.join(sub);
        if !from.is_dir() {
            continue;
        }
        fs::create_dir_all(out.join(sub))?;
        for e in fs::read_dir(&from).with_context(|| format!("listing {}", from.display()))? {
            let e = e?;
            if e.metadata()?.modified()? <= warmed {
                let to = out.join(sub).join(e.file_name());
                if e.file_type()?.is_dir() {
                    fsutil::copy_tree(&e.path(), &to)?;
                } else {
                    fs::copy(e.path(), &to)?;
                }
            }
        }
    }
    Ok(())
}

/// Cold build step: `dist`'s build (xtask) against the plain script.
pub fn cold(main: &Project, work: &Path, opts: &PipelineOptions) -> Result<Section> {
    let session = BuildSession::open(main, &opts.session(VendorOptions::default()))?;
    let (pins, pin, flags) = (session.pins, &session.redis, &session.flags);
    let template = work.join("zig-cache-template");
    warm_zig_template(&session, &template)?;
    let series_dir = pin
        .patches_dir(&main.root)
        .with_context(|| format!("the {} pin names no patch series", pin.id()))?;
    let script = script_text(flags, &pins.openssl, pin);
    let script_path = work.parent().unwrap_or(work).join("cold-build-by-hand.sh");
    fsutil::write_atomic_mode(&script_path, script.as_bytes(), 0o755)?;

    let (mut xtask, mut by_hand, mut parts) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.cold_rounds {
        let sides: [bool; 2] = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for is_xtask in sides {
            if is_xtask {
                let dir = work.join(format!("cold-{round}-xtask"));
                let state = private_state(main, &dir, ZigCache::CopyOf(&template))?;
                eprintln!("  cold build {}: xtask in {}", round + 1, dir.display());
                let start = Instant::now();
                let (openssl, redis) = build_step(&state, opts)?;
                let secs = start.elapsed().as_secs_f64();
                if openssl.cached || redis.cached {
                    bail!("the cold build in {} found a cached step", dir.display());
                }
                eprintln!("  cold build {}: xtask took {secs:.1}s", round + 1);
                xtask.push(secs);
                fsutil::make_writable_and_remove(&dir)?;
            } else {
                let dir = work.join(format!("cold-{round}-script"));
                let state = private_state(main, &dir, ZigCache::CopyOf(&template))?;
                eprintln!("  cold build {}: script in {}", round + 1, dir.display());
                let (o, r) = cold_script(&state, opts, &series_dir, &script_path)?;
                eprintln!(
                    "  cold build {}: script took {:.1}s (OpenSSL {o:.1}s, Redis {r:.1}s)",
                    round + 1,
                    o + r
                );
                by_hand.push(o + r);
                parts.push((o, r));
                fsutil::make_writable_and_remove(&dir)?;
            }
        }
    }
    let row = Row::compare(
        &format!(
            "cold compile, OpenSSL {} + Redis {}",
            pins.openssl.version, pin.version
        ),
        Unit::Seconds,
        xtask,
        by_hand,
        Some(Target::RatioAtMost { value: 1.0 }),
    )?;
    let parts_text: Vec<String> = parts
        .iter()
        .map(|(o, r)| format!("OpenSSL {o:.1} s + Redis {r:.1} s"))
        .collect();
    Ok(Section {
        id: "build".into(),
        title: "Cold build step: `cargo xtask dist`'s build against a plain shell script".into(),
        a: "xtask".into(),
        b: Some("script".into()),
        rows: vec![row],
        notes: vec![format!(
            "Both sides inside the same bwrap sandbox, same zig wrappers, flags, paths and \
             `-j{}`, each from an empty state with the zig wheel already unpacked and a copy \
             of a warm zig cache (zig's own runtime for the target already built). xtask: \
             `build::openssl_and_redis` (vendor check, patch, OpenSSL; Redis compiling beside OpenSSL once its headers \
             are generated, then the Redis link; link maps, memcpy check, licences). \
             Script ({}): `cp -R`, OpenSSL `Configure && make build_libs && make install_dev`, \
             `patch -p1`, Redis `make`; its parts per round: {}.",
            opts.jobs,
            script_path
                .strip_prefix(&main.root)
                .unwrap_or(&script_path)
                .display(),
            parts_text.join("; ")
        )],
    })
}

/// `dist`'s build stage (toolchain, OpenSSL, vendor check, patch, Redis),
/// offline: the private state links the main state's trees.
fn build_step(state: &Project, opts: &PipelineOptions) -> Result<(BuiltOpenssl, BuiltRedis)> {
    let session = BuildSession::open(state, &opts.session(OFFLINE))?;
    session.build(&session.series)
}

/// Run the script's two steps in the sandbox; their times in seconds.
fn cold_script(
    state: &Project,
    opts: &PipelineOptions,
    series_dir: &Path,
    script: &Path,
) -> Result<(f64, f64)> {
    let session = BuildSession::open(state, &opts.session(OFFLINE))?;
    let (pins, pin, cx) = (session.pins, &session.redis, session.context());
    let dir = &state.state;
    let prefix = dir.join("openssl");
    let logs = dir.join("logs");
    let mut times = Vec::new();
    for (step, source, writable_prefix) in [("openssl", &pins.openssl, true), ("redis", pin, false)]
    {
        let src = dir.join(format!("{step}-src"));
        fs::create_dir_all(&src)?;
        fs::create_dir_all(&prefix)?;
        let mut sb = cx.sandbox(dir)?;
        let l = BuildContext::layout(&mut sb, &src, &prefix, writable_prefix);
        let tree = sb.mount(&vendor::tree_dir(state, source), "/build/in/tree", false);
        let patches = sb.mount(series_dir, "/build/in/patches", false);
        let sh = sb.mount(script, "/build/in/build.sh", false);
        let argv: Vec<String> = [
            "sh".into(),
            sh.display().to_string(),
            step.into(),
            tree.display().to_string(),
            l.src.display().to_string(),
            l.openssl.display().to_string(),
            patches.display().to_string(),
        ]
        .to_vec();
        let took = run::logged(
            &format!("script: {}", source.id()),
            sb.command(&argv),
            &logs.join(format!("{step}.log")),
        )?;
        times.push(took.as_secs_f64());
    }
    if !prefix.join("lib/libcrypto.a").is_file()
        || !dir.join("redis-src/src/redis-server").is_file()
    {
        bail!(
            "the script finished without libcrypto.a or redis-server; see {}",
            logs.display()
        );
    }
    Ok((times[0], times[1]))
}

/// Quote for `sh`: one word, whatever it holds.
pub fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./,:+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The cold compile as a plain script: the same commands, flags and
/// environment variables as `build.rs`, without the xtask.
pub fn script_text(flags: &BuildFlags, openssl: &SourcePin, redis: &SourcePin) -> String {
    let q = |xs: &[String]| xs.iter().map(|x| sh_quote(x)).collect::<Vec<_>>().join(" ");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/bin/sh\n\
         # The compile behind `cargo xtask dist`, by hand (written by `cargo xtask bench`).\n\
         # usage: build.sh openssl|redis TREE SRC PREFIX PATCHES\n\
         # Runs in SRC (empty) with the zig wrappers on PATH; PREFIX is OpenSSL's prefix.\n\
         set -eu\n\
         step=$1 tree=$2 src=$3 prefix=$4 patches=$5\n\
         cd \"$src\"\n\
         cp -R \"$tree\"/. .\n\
         case $step in\n\
         openssl)"
    );
    let _ = writeln!(
        s,
        "    perl ./Configure {} \"--prefix=$prefix\" {} \"-ffile-prefix-map=$src={}\" CC=cc AR=ar RANLIB=ranlib",
        q(&flags.openssl_configure),
        q(&flags.openssl_cflags),
        openssl.id()
    );
    let _ = writeln!(s, "    make -j{} build_libs", flags.jobs);
    let _ = writeln!(s, "    make install_dev");
    let _ = writeln!(s, "    ;;\nredis)");
    let _ = writeln!(
        s,
        "    for p in $(sed 's/#.*//' \"$patches/series\"); do patch -p1 -s < \"$patches/$p\"; done"
    );
    let _ = writeln!(
        s,
        "    CFLAGS={}\" -ffile-prefix-map=$src={}\" LDFLAGS={} \\\n    make -j{} {} \\\n        \"OPENSSL_PREFIX=$prefix\" \"LIBSSL_LIBS=$prefix/lib/libssl.a\" \"LIBCRYPTO_LIBS=$prefix/lib/libcrypto.a -ldl -pthread\" \\\n        {}",
        sh_quote(&flags.cflags.join(" ")),
        redis.id(),
        sh_quote(&flags.ldflags.join(" ")),
        flags.jobs,
        q(&flags.redis_make),
        sh_quote(build::LINK_MAP_RECIPE)
    );
    let _ = writeln!(
        s,
        "    ;;\n*) echo \"unknown step $step\" >&2; exit 2 ;;\nesac"
    );
    s
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
                RunRecord::path(&main.state, &dist::release_name_of(pins, pin)).display(),
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

/// `dist` after one Redis patch changed, in a scratch copy of the checkout:
/// OpenSSL must come from the cache, and the run should take about as long
/// as its own Redis compile.
pub fn incremental(
    main: &Project,
    work: &Path,
    openssl_build: &Path,
    opts: &PipelineOptions,
) -> Result<Section> {
    // The running image, copied: `cargo xtask` in the no-op part may have
    // replaced the file this process was started from.
    let exe = work.join("xtask");
    fs::copy("/proc/self/exe", &exe).context("copying the running xtask binary")?;
    let pins = main.pins()?;
    let pin = pins.redis(opts.redis.as_deref())?.clone();
    let (mut totals, mut redis_steps) = (Vec::new(), Vec::new());
    let mut rebuilt_openssl = false;
    let mut touched = String::new();
    let mut stages = Vec::new();
    for round in 0..opts.incremental_rounds {
        let dir = work.join(format!("incremental-{round}"));
        let state = private_state(main, &dir.join("state"), ZigCache::Shared)?;
        let openssl_name = openssl_build
            .file_name()
            .context("the OpenSSL build folder has no name")?;
        fs::create_dir_all(state.builds())?;
        symlink(openssl_build, state.builds().join(openssl_name))?;
        let checkout = dir.join("checkout");
        touched = scratch_checkout(&main.root, &checkout, &pin)?;

        let mut cmd = Command::new(&exe);
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
        let record = RunRecord::load(&state.state, pins, &pin)?;
        let step = ["compile", "link"]
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
        for e in fs::read_dir(state.builds())? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{}-", pins.openssl.id())) && !e.file_type()?.is_symlink()
            {
                rebuilt_openssl = true;
            }
        }
        eprintln!(
            "  incremental {}: {total:.1}s (Redis compile {step:.1}s)",
            round + 1
        );
        let parts: Vec<String> = record
            .stages
            .iter()
            .map(|s| format!("{} {:.1}s", s.name, s.seconds))
            .collect();
        stages.push(format!(
            "run {}: {:.1}s ({})",
            round + 1,
            record.seconds,
            parts.join(", ")
        ));
        totals.push(total);
        redis_steps.push(step);
        fsutil::make_writable_and_remove(&dir)?;
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
mod tests {
    use super::*;
    use crate::pins::Pins;

    fn pin(name: &str, version: &str) -> SourcePin {
        let zeros = "0".repeat(64);
        let text = format!(
            "[toolchain]\nzig-version = \"0.17.1\"\nwheel = \"w\"\nwheel-sha256 = \"00\"\n\
             target = \"x86_64-linux-gnu.2.11\"\ncpu = \"baseline\"\nopt = \"-O2\"\n\
             [openssl]\nname = \"{name}\"\nversion = \"{version}\"\nreleased = \"2026-01-27\"\n\
             tree = \"sha256:{zeros}\"\narchives = []\nlicense = \"x\"\n\
             [[redis]]\nname = \"redis\"\nversion = \"7.0.15\"\nreleased = \"2024-01-09\"\n\
             tree = \"sha256:{zeros}\"\narchives = []\nlicense = \"x\"\n"
        );
        Pins::parse(&text).unwrap().openssl
    }

    #[test]
    fn quoting_keeps_each_argument_one_word() {
        assert_eq!(sh_quote("BUILD_TLS=yes"), "BUILD_TLS=yes");
        assert_eq!(
            sh_quote("JEMALLOC_CONFIGURE_OPTS=--a --b"),
            "'JEMALLOC_CONFIGURE_OPTS=--a --b'"
        );
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn the_script_runs_what_build_rs_runs_with_the_same_flags() {
        let flags = BuildFlags::new(SandboxKind::Bwrap, 1_704_758_400, 2);
        let s = script_text(&flags, &pin("openssl", "3.5.5"), &pin("redis", "7.0.15"));
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("set -eu\n"));
        let configure = s.lines().find(|l| l.contains("./Configure")).unwrap();
        for a in &flags.openssl_configure {
            assert!(configure.contains(&sh_quote(a)), "{a} in {configure}");
        }
        for a in &flags.openssl_cflags {
            assert!(configure.contains(a.as_str()), "{a} in {configure}");
        }
        assert!(configure.contains("\"-ffile-prefix-map=$src=openssl-3.5.5\""));
        assert!(s.contains("    make -j2 build_libs\n    make install_dev\n"));
        let make = s
            .split("redis)")
            .nth(1)
            .unwrap()
            .split(";;")
            .next()
            .unwrap();
        assert!(make.contains("patch -p1"));
        assert!(make.contains(&format!("CFLAGS='{}'", flags.cflags.join(" "))));
        assert!(make.contains(&format!("LDFLAGS='{}'", flags.ldflags.join(" "))));
        assert!(make.contains("make -j2 "));
        for a in &flags.redis_make {
            assert!(make.contains(&sh_quote(a)), "{a} in {make}");
        }
        assert!(make.contains("\"LIBCRYPTO_LIBS=$prefix/lib/libcrypto.a -ldl -pthread\""));
        assert!(make.contains(&sh_quote(build::LINK_MAP_RECIPE)));
    }

    #[test]
    fn the_script_is_valid_sh() {
        let flags = BuildFlags::new(SandboxKind::Bwrap, 0, 2);
        let s = script_text(&flags, &pin("openssl", "3.5.5"), &pin("redis", "7.0.15"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("build.sh");
        fs::write(&p, s).unwrap();
        let out = Command::new("sh").arg("-n").arg(&p).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_scratch_checkout_changes_one_patch_and_nothing_in_the_source() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("vendor")).unwrap();
        fs::write(r.join("vendor/sources.toml"), "pins").unwrap();
        fs::create_dir_all(r.join("policy")).unwrap();
        fs::write(r.join("policy/x86_64-linux-gnu.2.11.toml"), "policy").unwrap();
        fs::create_dir_all(r.join("patches/redis/7.0")).unwrap();
        let patch = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        fs::write(r.join("patches/redis/7.0/0001-x.patch"), patch).unwrap();
        fs::write(r.join("patches/redis/7.0/series"), "# c\n0001-x.patch\n").unwrap();
        fs::create_dir_all(r.join("xtask")).unwrap();
        fs::write(r.join("xtask/Cargo.toml"), "[package]").unwrap();
        let mut p = pin("redis", "7.0.15");
        p.patches = Some("patches/redis/7.0".into());
        let dest = root.path().join("scratch");
        let touched = scratch_checkout(r, &dest, &p).unwrap();
        assert_eq!(touched, "patches/redis/7.0/0001-x.patch");
        let changed = fs::read_to_string(dest.join(&touched)).unwrap();
        assert!(changed.ends_with(patch) && changed.len() > patch.len());
        assert_eq!(
            fs::read_to_string(r.join("patches/redis/7.0/0001-x.patch")).unwrap(),
            patch,
            "the checkout itself is unchanged"
        );
        assert!(dest.join("vendor/sources.toml").is_file());
        assert!(dest.join("policy/x86_64-linux-gnu.2.11.toml").is_file());
        assert!(dest.join("xtask/Cargo.toml").is_file());
    }
}
