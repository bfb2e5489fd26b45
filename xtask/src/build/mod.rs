//! Stage 4, build: OpenSSL (static) and Redis, each inside the sandbox, each
//! cached under the hash of its inputs. A second `dist` with nothing changed
//! rebuilds nothing; a Redis-only change does not rebuild OpenSSL.

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use xshell::cmd;

use crate::{
    cached_step::CachedStep,
    fsutil::{self, Staging},
    patch::{self, Series},
    pins::{CompilerRt, Pins, SourcePin, Target},
    project::Project,
    run::{StepLog, StepRecord, StepState},
    sandbox::{Sandbox, SandboxKind},
    toolchain::{self, Toolchain},
    treehash,
    vendor::{self, VendorOptions},
};

mod openssl;
pub use openssl::*;
mod redis;
pub use redis::*;
mod memcpy;
pub use memcpy::*;
mod pgo;
pub use pgo::*;

/// Bump when the recipe (the steps in `openssl.rs` and `redis.rs`) changes in
/// a way the inputs do not show.
const RECIPE: u32 = 4;

/// Every kind of compile and link the builds do, so that zig builds its
/// runtime pieces here (see `BuildContext::warm_zig_cache`).
const ZIG_WARM_UP: &str = r#"
printf '#include <stdio.h>\nint main(void) { puts("x"); return 0; }\n' > t.c
printf '#include <iostream>\n#include <string>\nint main() { std::string s("x"); std::cout << s << std::endl; return 0; }\n' > t.cc
for o in -O2 -O3; do
  cc $o -fPIE -pie t.c -o c-pie
  cc $o t.c -o c-exe
  cc $o -fPIC -shared t.c -o c.so
  cc $o -flto -fPIE -pie t.c -o c-lto
  c++ $o -fPIE -pie t.cc -o cxx-pie
  c++ $o @CXX_OBJECT@-c t.cc -o t.o && cc $o -fPIE -pie t.o -lstdc++ -o cxx-via-cc
done
"#;

/// The warm-up for `target`. A static target links every program as a
/// static PIE, so the object compiled on its own must be position-independent
/// too (for glibc targets the line stays as it always was).
/// A target whose links use zig's runtime without the C library's functions
/// builds that library first, since every compile names it.
fn zig_warm_up(target: &Target, cpu: &str) -> String {
    let object = if target.libc() == "musl" {
        "-fPIE "
    } else {
        ""
    };
    let script = ZIG_WARM_UP.replace("@CXX_OBJECT@", object);
    match target.compiler_rt {
        CompilerRt::Zig => script,
        CompilerRt::WithoutLibc => {
            crate::compiler_rt::build_command(&target.zig, cpu) + script.trim_start()
        }
    }
}

/// The file left in zig's cache once its runtime pieces are built.
pub const ZIG_WARM_STAMP: &str = "portable-redis-warm";

/// The programs a release ships; the aliases are `redis-server` under other
/// names (Redis picks its mode from argv[0]), installed as symlinks as
/// `make install` does.
pub const PROGRAMS: &[&str] = &["redis-server", "redis-cli", "redis-benchmark"];
pub const ALIASES: &[&str] = &["redis-check-aof", "redis-check-rdb", "redis-sentinel"];
/// Redis's own configuration files, as the series left them (the release's
/// `etc/`; the series points them at the installed paths).
pub const CONFIGS: &[&str] = &["redis.conf", "sentinel.conf"];

/// Everything the compile depends on besides sources: recorded in BUILDINFO.
#[derive(Debug, Clone, Serialize)]
pub struct BuildFlags {
    pub sandbox: SandboxKind,
    pub source_date_epoch: u64,
    /// Parallel jobs change how fast, not what is built: not an input.
    #[serde(skip)]
    pub jobs: usize,
    pub openssl_configure: Vec<String>,
    pub openssl_cflags: Vec<String>,
    /// Redis's `make` variables for every line of the target.
    pub redis_make: Vec<String>,
    /// The Redis line's own (`SourcePin::make`): apart, so that OpenSSL's
    /// step, which leaves them out, is one build for every line.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub line_make: Vec<String>,
    /// Profile-guided optimisation of Redis's own objects (not OpenSSL's).
    #[serde(skip_serializing_if = "Pgo::is_off")]
    pub pgo: Pgo,
    pub cflags: Vec<String>,
    pub ldflags: Vec<String>,
}

/// Paths as the build sees them (fixed inside bwrap, host paths without).
pub struct Layout {
    pub src: PathBuf,
    pub openssl: PathBuf,
}

impl BuildFlags {
    /// `line_make`: the Redis pin's own `make` variables (`SourcePin::make`).
    pub fn new(
        target: &Target,
        line_make: &[String],
        sandbox: SandboxKind,
        source_date_epoch: u64,
        jobs: usize,
    ) -> BuildFlags {
        let hardening = [
            "-fPIE",
            "-fstack-protector-strong",
            "-D_FORTIFY_SOURCE=2",
            "-g",
        ];
        BuildFlags {
            sandbox,
            source_date_epoch,
            jobs,
            openssl_configure: std::iter::once(target.openssl.clone())
                .chain(OPENSSL_OPTIONS.map(String::from))
                .collect(),
            openssl_cflags: ["-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-g"]
                .map(String::from)
                .to_vec(),
            redis_make: [
                "BUILD_TLS=yes",
                "USE_SYSTEMD=no",
                "MALLOC=jemalloc",
                "CC=cc",
                "CXX=c++",
                "AR=ar",
                "RANLIB=ranlib",
                "PKG_CONFIG=false",
                "V=1",
            ]
            .map(String::from)
            .into_iter()
            .chain([format!("JEMALLOC_CONFIGURE_OPTS={}", target.jemalloc)])
            .chain(target.make.iter().cloned())
            .collect(),
            line_make: line_make.to_vec(),
            pgo: Pgo::Off,
            cflags: hardening.map(String::from).to_vec(),
            ldflags: [
                "-pie",
                "-Wl,-z,relro,-z,now",
                "-Wl,-z,noexecstack",
                "-Wl,--build-id=sha1",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    /// Redis's `make` variables: the target's, then the line's.
    pub fn make_variables(&self) -> impl Iterator<Item = &String> {
        self.redis_make.iter().chain(&self.line_make)
    }
}

/// Static OpenSSL installed into a prefix.
#[derive(Debug, Clone)]
pub struct BuiltOpenssl {
    pub key: String,
    /// The step's output folder (`prefix/`, `licenses/`).
    pub dir: PathBuf,
    /// `include/`, `lib/libssl.a`, `lib/libcrypto.a`.
    pub prefix: PathBuf,
    pub cached: bool,
}

/// Redis binaries, unstripped, with the logs of their build.
#[derive(Debug, Clone)]
pub struct BuiltRedis {
    pub key: String,
    pub dir: PathBuf,
    /// `bin/`: the three programs and the three aliases.
    pub bin: PathBuf,
    pub cached: bool,
}

/// What a build step needs from the stages before it.
pub struct BuildContext<'a> {
    pub project: &'a Project,
    pub toolchain: &'a Toolchain,
    pub flags: &'a BuildFlags,
    /// Where the steps are recorded.
    pub steps: &'a StepLog,
}

impl BuildContext<'_> {
    /// The build step `step` of `pin` with these inputs: keyed by them, the
    /// recipe, the toolchain, its wrappers and the flags; its output in
    /// `builds/<name>-<version>-<key prefix>`.
    fn step(&self, step: &str, pin: &SourcePin, inputs: serde_json::Value) -> CachedStep {
        let record = serde_json::json!({
            "step": step,
            "recipe": RECIPE,
            "toolchain": self.toolchain.identity,
            "wrappers": self.toolchain.wrappers(Path::new("/toolchain/zig/zig")),
            "flags": self.flags,
            "inputs": inputs,
        });
        CachedStep::new(&self.project.builds(), &pin.id(), &record)
    }

    /// A cached step found or built, into the step log.
    fn record(&self, step: &CachedStep, cached: bool) {
        self.steps.push(StepRecord {
            name: step.name.clone(),
            state: if cached {
                StepState::Cached
            } else {
                StepState::Built
            },
            key: Some(step.key.clone()),
            dir: Some(step.out.clone()),
            seconds: None,
            log: None,
        });
    }

    /// zig's cache for this toolchain, target and warm-up recipe.
    pub fn zig_cache(&self) -> PathBuf {
        let (tc, pin) = (self.toolchain, &self.toolchain.pin);
        let key = treehash::sha256_bytes(
            format!(
                "{}\n{} {} {}\n{}",
                tc.identity,
                tc.target.zig,
                pin.cpu,
                pin.opt,
                zig_warm_up(&tc.target, &pin.cpu)
            )
            .as_bytes(),
        );
        self.project.zig_cache().join(&key[..16])
    }

    /// zig builds its runtime pieces (crt start files, compiler-rt, the glibc
    /// stubs, libc++) into its cache the first time a compile or link needs
    /// them, and their debug info records the folder of that compile. Which
    /// Redis or OpenSSL compile comes first varies with `make -j`, so the
    /// pieces are built once here, from a fixed folder, before anything else.
    fn warm_zig_cache(&self) -> Result<()> {
        let stamp = self.zig_cache().join(ZIG_WARM_STAMP);
        if stamp.is_file() {
            return Ok(());
        }
        if self.toolchain.target.compiler_rt == CompilerRt::WithoutLibc {
            crate::compiler_rt::prepare(
                &self.toolchain.dir.join("lib"),
                &self.zig_cache().join(crate::compiler_rt::folder()),
            )?;
        }
        let scratch = Staging::beside(&self.project.scratch().join("zig-warm"))?;
        let mut sb = self.base_sandbox(scratch.path())?;
        let dir = sb.mount(&scratch.path().join("warm"), "/build/warm", true);
        fs::create_dir_all(scratch.path().join("warm"))?;
        sb.cwd(&dir);
        let log = self.project.state.join("logs").join("zig-warm-up.log");
        self.steps.logged(
            "zig runtime (once per toolchain)",
            sb.command(&[
                "sh".into(),
                "-ec".into(),
                zig_warm_up(&self.toolchain.target, &self.toolchain.pin.cpu),
            ]),
            &log,
        )?;
        fsutil::write_atomic(&stamp, b"")?;
        Ok(())
    }

    /// A sandbox with the toolchain, the zig cache and the fixed environment,
    /// the zig cache warmed.
    pub fn sandbox(&self, scratch: &Path) -> Result<Sandbox> {
        self.warm_zig_cache()?;
        self.base_sandbox(scratch)
    }

    fn base_sandbox(&self, scratch: &Path) -> Result<Sandbox> {
        let mut sb = Sandbox::new(self.flags.sandbox);
        let zig_dir = sb.mount(&self.toolchain.dir, "/toolchain/zig", false);
        let wrappers_host = scratch.join("toolchain-bin");
        toolchain::write_wrappers(
            &wrappers_host,
            &self.toolchain.wrappers(&zig_dir.join("zig")),
        )?;
        let bin = sb.mount(&wrappers_host, "/toolchain/bin", false);
        let zig_cache = self.zig_cache();
        fs::create_dir_all(&zig_cache)?;
        let cache = sb.mount(&zig_cache, "/cache/zig", true);
        let cache = cache.to_string_lossy().into_owned();
        sb.env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("HOME", "/tmp")
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .env(
                "SOURCE_DATE_EPOCH",
                self.flags.source_date_epoch.to_string(),
            )
            .env("ZIG", zig_dir.join("zig").display().to_string())
            .env("ZIG_GLOBAL_CACHE_DIR", cache.clone())
            .env("ZIG_LOCAL_CACHE_DIR", cache);
        Ok(sb)
    }

    /// The source at `/build/src` (the working folder), OpenSSL's prefix at
    /// `/build/openssl`.
    pub fn layout(
        sb: &mut Sandbox,
        src_host: &Path,
        openssl_host: &Path,
        openssl_writable: bool,
    ) -> Layout {
        let src = sb.mount(src_host, "/build/src", true);
        let openssl = sb.mount(openssl_host, "/build/openssl", openssl_writable);
        let parent = src.parent().map(Path::to_path_buf).unwrap_or_default();
        sb.env("GIT_CEILING_DIRECTORIES", parent.display().to_string())
            .cwd(&src);
        Layout { src, openssl }
    }
}

/// OpenSSL (with `openssl_series` applied) and Redis from `pin`'s vendored
/// tree with `series` applied; each cached by the hash of its inputs. When both must be built (in bwrap),
/// Redis compiles while OpenSSL builds its libraries, against OpenSSL's
/// headers copied out as soon as they are generated; only Redis's link waits
/// for OpenSSL.
pub fn openssl_and_redis(
    cx: &BuildContext,
    pins: &Pins,
    openssl_series: &Series,
    pin: &SourcePin,
    series: &Series,
    vendor_opts: &VendorOptions,
) -> Result<(BuiltOpenssl, BuiltRedis)> {
    let ossl = OpensslStep::new(cx, &pins.openssl, openssl_series)?;
    let redis = RedisStep::new(cx, pin, series, &ossl.step.key);
    let cached_openssl = ossl.cached();
    let build_openssl = |early: Option<EarlyHeaders>| -> Result<BuiltOpenssl> {
        match &cached_openssl {
            Some(built) => Ok(built.clone()),
            None => {
                let tree = vendor::vendor(cx.project, &pins.openssl, vendor_opts)?.dir;
                ossl.build(&tree, early)
            }
        }
    };
    if let Some(built) = redis.cached() {
        return Ok((build_openssl(None)?, built));
    }
    let patched = |dest: &Path| {
        let source = vendor::vendor(cx.project, pin, vendor_opts)?;
        patch::apply_series(&source.dir, series, dest)?;
        Ok(source.dir)
    };
    if cached_openssl.is_some() || cx.flags.sandbox == SandboxKind::None {
        let openssl = build_openssl(None)?;
        let tree = redis.prepare(patched)?;
        redis.compile(&tree, &openssl.prefix)?;
        let built = redis.link(tree, &openssl)?;
        return Ok((openssl, built));
    }
    // zig's runtime is built once, before the two steps share its cache.
    cx.warm_zig_cache()?;
    let headers = Staging::beside(&cx.project.scratch().join("openssl-headers"))?;
    let (ready, headers_made) = std::sync::mpsc::channel();
    let early = EarlyHeaders {
        dest: headers.path().join("include"),
        ready,
    };
    std::thread::scope(|s| {
        let openssl = s.spawn(|| build_openssl(Some(early)));
        let compiled = redis.prepare(patched).and_then(|tree| {
            headers_made.recv().map_err(|_| {
                anyhow::anyhow!("OpenSSL stopped before its headers were generated")
            })?;
            redis.compile(&tree, headers.path())?;
            Ok(tree)
        });
        let openssl = openssl
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the OpenSSL build's thread panicked")))?;
        let built = redis.link(compiled?, &openssl)?;
        Ok((openssl, built))
    })
}

#[cfg(test)]
mod tests;
