//! The cold build step: `dist`'s build against the same compile by a plain
//! shell script, each from an empty state with zig's runtime already built.

use super::*;

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
        let mut argv: Vec<String> = [
            "sh".into(),
            sh.display().to_string(),
            step.into(),
            tree.display().to_string(),
            l.src.display().to_string(),
            l.openssl.display().to_string(),
            patches.display().to_string(),
        ]
        .to_vec();
        if step == "redis" {
            // The line's profile, as the xtask's Redis step has it.
            argv.extend(cx.flags.pgo.make_args(&mut sb));
        }
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
/// environment variables as `build/`, without the xtask.
pub fn script_text(flags: &BuildFlags, openssl: &SourcePin, redis: &SourcePin) -> String {
    let q = |xs: &[String]| xs.iter().map(|x| sh_quote(x)).collect::<Vec<_>>().join(" ");
    let mut s = String::new();
    let _ = writeln!(
        s,
        "#!/bin/sh\n\
         # The compile behind `cargo xtask dist`, by hand (written by `cargo xtask bench`).\n\
         # usage: build.sh openssl|redis TREE SRC PREFIX PATCHES [REDIS MAKE VARIABLES...]\n\
         # Runs in SRC (empty) with the zig wrappers on PATH; PREFIX is OpenSSL's prefix.\n\
         set -eu\n\
         step=$1 tree=$2 src=$3 prefix=$4 patches=$5\n\
         shift 5\n\
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
        "    CFLAGS={}\" -ffile-prefix-map=$src={}\" LDFLAGS={} \\\n    make -j{} {} \\\n        \"OPENSSL_PREFIX=$prefix\" \"LIBSSL_LIBS=$prefix/lib/libssl.a\" \"LIBCRYPTO_LIBS=$prefix/lib/libcrypto.a -ldl -pthread\" \\\n        {} \"$@\"",
        sh_quote(&flags.cflags.join(" ")),
        redis.id(),
        sh_quote(&flags.ldflags.join(" ")),
        flags.jobs,
        q(&flags.make_variables().cloned().collect::<Vec<_>>()),
        sh_quote(build::LINK_MAP_RECIPE)
    );
    let _ = writeln!(
        s,
        "    ;;\n*) echo \"unknown step $step\" >&2; exit 2 ;;\nesac"
    );
    s
}
