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
    pins::{Pins, SourcePin},
    project::Project,
    run::{StepLog, StepRecord, StepState},
    sandbox::{Sandbox, SandboxKind},
    toolchain::{self, Toolchain},
    treehash,
    vendor::{self, VendorOptions},
};

/// Bump when the recipe below changes in a way the inputs do not show.
const RECIPE: u32 = 3;

/// The Redis link writes each program's linker map (lld's `--print-map`,
/// zig's driver has no `-Map`) to `src/<program>.map`; the build keeps it,
/// completed with a cross-reference table, in `maps/` next to `bin/` so
/// verify can name the object behind each symbol.
pub const LINK_MAP_RECIPE: &str = "REDIS_LD=$(CC) $(FINAL_LDFLAGS) -Wl,--print-map >$@.map";

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
  c++ $o -c t.cc -o t.o && cc $o -fPIE -pie t.o -lstdc++ -o cxx-via-cc
done
"#;

/// The programs a release ships; the last three are `redis-server` under
/// other names (Redis picks its mode from argv[0]), installed as symlinks as
/// `make install` does.
/// The file left in zig's cache once its runtime pieces are built.
pub const ZIG_WARM_STAMP: &str = "portable-redis-warm";

pub const PROGRAMS: &[&str] = &["redis-server", "redis-cli", "redis-benchmark"];
pub const ALIASES: &[&str] = &["redis-check-aof", "redis-check-rdb", "redis-sentinel"];
/// Redis's own configuration files, as the series left them (the release's
/// `etc/`; the series points them at the installed paths).
pub const CONFIGS: &[&str] = &["redis.conf", "sentinel.conf"];

/// OpenSSL's Configure options. Static libraries only (`no-shared`), the
/// providers built in (`no-module`: a static binary loads no provider
/// modules), without the legacy provider's algorithms, which Redis does not
/// need (`no-legacy`), and without the protocols and formats Redis never
/// uses (`no-dtls no-quic no-cms no-cmp`): their code is not built, so their
/// CVEs do not apply (vendor/advisories.toml says which).
pub const OPENSSL_CONFIGURE: [&str; 12] = [
    "linux-x86_64",
    "no-shared",
    "no-module",
    "no-legacy",
    "no-dtls",
    "no-quic",
    "no-cms",
    "no-cmp",
    "no-tests",
    "-fPIC",
    "--openssldir=/etc/ssl",
    "--libdir=lib",
];

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
    pub redis_make: Vec<String>,
    pub cflags: Vec<String>,
    pub ldflags: Vec<String>,
}

/// Paths as the build sees them (fixed inside bwrap, host paths without).
pub struct Layout {
    pub src: PathBuf,
    pub openssl: PathBuf,
}

impl BuildFlags {
    pub fn new(sandbox: SandboxKind, source_date_epoch: u64, jobs: usize) -> BuildFlags {
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
            openssl_configure: OPENSSL_CONFIGURE.map(String::from).to_vec(),
            openssl_cflags: ["-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-g"].map(String::from).to_vec(),
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
                "JEMALLOC_CONFIGURE_OPTS=--with-lg-page=12 --with-lg-hugepage=21 --with-lg-vaddr=48 --disable-cxx",
            ]
            .map(String::from)
            .to_vec(),
            cflags: hardening.map(String::from).to_vec(),
            ldflags: ["-pie", "-Wl,-z,relro,-z,now", "-Wl,-z,noexecstack", "-Wl,--build-id=sha1"]
                .map(String::from)
                .to_vec(),
        }
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

    /// zig's cache for this toolchain and warm-up recipe.
    pub fn zig_cache(&self) -> PathBuf {
        let key = treehash::sha256_bytes(
            format!("{}\n{ZIG_WARM_UP}", self.toolchain.identity).as_bytes(),
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
        let scratch = Staging::beside(&self.project.scratch().join("zig-warm"))?;
        let mut sb = self.base_sandbox(scratch.path())?;
        let dir = sb.mount(&scratch.path().join("warm"), "/build/warm", true);
        fs::create_dir_all(scratch.path().join("warm"))?;
        sb.cwd(&dir);
        let log = self.project.state.join("logs").join("zig-warm-up.log");
        self.steps.logged(
            "zig runtime (once per toolchain)",
            sb.command(&["sh".into(), "-ec".into(), ZIG_WARM_UP.into()]),
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

/// The OpenSSL step before it runs: its key and output folder.
struct OpensslStep<'a> {
    cx: &'a BuildContext<'a>,
    pin: &'a SourcePin,
    /// Applied to the vendored tree before the build.
    series: &'a Series,
    /// The context's flags with OpenSSL's own release date: every Redis
    /// line then links the same OpenSSL build.
    flags: BuildFlags,
    step: CachedStep,
}

impl<'a> OpensslStep<'a> {
    fn new(
        cx: &'a BuildContext<'a>,
        pin: &'a SourcePin,
        series: &'a Series,
    ) -> Result<OpensslStep<'a>> {
        let flags = BuildFlags {
            source_date_epoch: pin.release_epoch()?,
            ..cx.flags.clone()
        };
        let step = BuildContext {
            flags: &flags,
            ..*cx
        }
        .step(
            "openssl",
            pin,
            serde_json::json!({
                "tree": pin.tree,
                "version": pin.version,
                "patches": series.fingerprint(),
            }),
        );
        Ok(OpensslStep {
            cx,
            pin,
            series,
            flags,
            step,
        })
    }

    fn prefix(&self) -> PathBuf {
        self.step.out.join("prefix")
    }

    /// The step's output, recorded in the build's step log.
    fn built(&self, cached: bool) -> BuiltOpenssl {
        self.cx.record(&self.step, cached);
        BuiltOpenssl {
            key: self.step.key.clone(),
            dir: self.step.out.clone(),
            prefix: self.prefix(),
            cached,
        }
    }

    fn cached(&self) -> Option<BuiltOpenssl> {
        self.step.cached(|_| {
            self.prefix()
                .join("lib/libcrypto.a")
                .is_file()
                .then(|| self.built(true))
        })
    }

    /// Configure, build and install static OpenSSL from `tree` with the
    /// step's series applied. With `early`,
    /// its public headers are copied out as soon as they are generated, before
    /// the libraries are built.
    fn build(&self, tree: &Path, early: Option<EarlyHeaders>) -> Result<BuiltOpenssl> {
        let pin = self.pin;
        let cx = &BuildContext {
            flags: &self.flags,
            ..*self.cx
        };
        let staging = self.step.stage()?;
        let src = staging.path().join("src");
        patch::apply_series(tree, self.series, &src)?;
        fs::create_dir_all(staging.path().join("prefix"))?;
        let logs = self.step.own_logs(cx.project);

        let mut sb = cx.sandbox(staging.path())?;
        let l = BuildContext::layout(&mut sb, &src, &staging.path().join("prefix"), true);
        let mut configure = vec!["perl".to_string(), "./Configure".into()];
        configure.extend(cx.flags.openssl_configure.iter().cloned());
        configure.push(format!("--prefix={}", l.openssl.display()));
        configure.extend(cx.flags.openssl_cflags.iter().cloned());
        configure.push(format!(
            "-ffile-prefix-map={}={}",
            l.src.display(),
            pin.id()
        ));
        configure.extend(["CC=cc", "AR=ar", "RANLIB=ranlib"].map(String::from));
        let jobs = format!("-j{}", cx.flags.jobs);

        cx.steps.logged(
            &format!("{} configure", pin.id()),
            sb.command(&configure),
            &logs.join("configure.log"),
        )?;
        cx.steps.logged(
            &format!("{} headers", pin.id()),
            sb.command(&["make".into(), jobs.clone(), "build_generated".into()]),
            &logs.join("build.log"),
        )?;
        if let Some(early) = early {
            fsutil::copy_tree(&src.join("include"), &early.dest)?;
            // The receiver may have stopped waiting; OpenSSL goes on regardless.
            let _ = early.ready.send(());
        }
        cx.steps.logged(
            &format!("{} build", pin.id()),
            sb.command(&["make".into(), jobs, "build_libs".into()]),
            &logs.join("build.log"),
        )?;
        cx.steps.logged(
            &format!("{} install", pin.id()),
            sb.command(&["make".into(), "install_dev".into()]),
            &logs.join("install.log"),
        )?;
        // Installed files get OpenSSL's release date: a Redis compiled
        // against the same headers before they were installed stays newer
        // than them, so its link step recompiles nothing.
        fsutil::set_mtimes(&staging.path().join("prefix"), cx.flags.source_date_epoch)?;
        collect_licenses(&src, pin, &staging.path().join("licenses"))?;
        fsutil::make_writable_and_remove(&src)?;
        self.step.commit(staging, None)?;
        Ok(self.built(false))
    }
}

/// Where OpenSSL's generated public headers go (`dest` becomes an
/// `include/` folder) and whom to tell when they are there.
struct EarlyHeaders {
    dest: PathBuf,
    ready: std::sync::mpsc::Sender<()>,
}

/// Read after Redis's `src/Makefile`: a goal for every object of the three
/// programs, which need OpenSSL's headers but not its libraries (only the
/// link does). `REDIS_VEC_SETS_OBJ` is 8.0's, empty in 7.0.
const OBJECTS_MK: &str = "\
# Written by cargo xtask: compile everything, link nothing.
portable-redis-objects: $(REDIS_SERVER_OBJ) $(REDIS_VEC_SETS_OBJ) $(REDIS_CLI_OBJ) $(REDIS_BENCHMARK_OBJ)
.PHONY: portable-redis-objects
";

/// The Redis step before it runs: its key and output folder.
struct RedisStep<'a> {
    cx: &'a BuildContext<'a>,
    pin: &'a SourcePin,
    step: CachedStep,
}

/// A Redis staging folder with the patched tree.
struct RedisTree {
    staging: Staging,
    src: PathBuf,
    logs: PathBuf,
}

impl<'a> RedisStep<'a> {
    fn new(
        cx: &'a BuildContext<'a>,
        pin: &'a SourcePin,
        series: &Series,
        openssl_key: &str,
    ) -> RedisStep<'a> {
        let step = cx.step(
            "redis",
            pin,
            serde_json::json!({
                "tree": pin.tree,
                "version": pin.version,
                "patches": series.fingerprint(),
                "openssl": openssl_key,
                "link": LINK_MAP_RECIPE,
            }),
        );
        RedisStep { cx, pin, step }
    }

    /// The step's output, recorded in the build's step log.
    fn built(&self, cached: bool) -> BuiltRedis {
        self.cx.record(&self.step, cached);
        BuiltRedis {
            key: self.step.key.clone(),
            dir: self.step.out.clone(),
            bin: self.step.out.join("bin"),
            cached,
        }
    }

    fn cached(&self) -> Option<BuiltRedis> {
        self.step.cached(|out| {
            out.join("bin/redis-server")
                .is_file()
                .then(|| self.built(true))
        })
    }

    /// Redis's `make` arguments, with OpenSSL's prefix at `ossl` as the build
    /// sees it.
    fn make_args(&self, ossl: &Path) -> Vec<String> {
        let ossl = ossl.display();
        let mut make = vec![format!("-j{}", self.cx.flags.jobs)];
        make.extend(self.cx.flags.redis_make.iter().cloned());
        make.push(format!("OPENSSL_PREFIX={ossl}"));
        make.push(format!("LIBSSL_LIBS={ossl}/lib/libssl.a"));
        make.push(format!(
            "LIBCRYPTO_LIBS={ossl}/lib/libcrypto.a -ldl -pthread"
        ));
        make.push(LINK_MAP_RECIPE.into());
        make
    }

    /// A sandbox for this build: the tree at `/build/src`, `openssl_host` at
    /// `/build/openssl`, the compile flags in the environment.
    fn sandbox(&self, tree: &RedisTree, openssl_host: &Path) -> Result<(Sandbox, Layout)> {
        let mut sb = self.cx.sandbox(tree.staging.path())?;
        let l = BuildContext::layout(&mut sb, &tree.src, openssl_host, false);
        let mut cflags = self.cx.flags.cflags.clone();
        cflags.push(format!(
            "-ffile-prefix-map={}={}",
            l.src.display(),
            self.pin.id()
        ));
        // Given through the environment, not the make command line: Redis's
        // deps append to CFLAGS, which a command-line CFLAGS would override.
        sb.env("CFLAGS", cflags.join(" "))
            .env("LDFLAGS", self.cx.flags.ldflags.join(" "));
        Ok((sb, l))
    }

    /// Patch the tree into a staging folder.
    fn prepare(&self, patched: impl FnOnce(&Path) -> Result<PathBuf>) -> Result<RedisTree> {
        let staging = self.step.stage()?;
        let src = staging.path().join("src");
        let pristine = patched(&src)?;
        bundled_components(&pristine, self.pin, &staging.path().join("components.json"))?;
        Ok(RedisTree {
            logs: self.step.own_logs(self.cx.project),
            src,
            staging,
        })
    }

    /// Redis's bundled dependencies and every object of the three programs,
    /// with OpenSSL's headers in `openssl_host/include` (seen at the prefix
    /// the link will use).
    fn compile(&self, tree: &RedisTree, openssl_host: &Path) -> Result<()> {
        let mk = tree.staging.path().join("objects.mk");
        fsutil::write_atomic(&mk, OBJECTS_MK.as_bytes())?;
        let (mut sb, l) = self.sandbox(tree, openssl_host)?;
        let mk_inside = sb.mount(&mk, "/build/objects.mk", false);
        let mut argv = ["make", "-C", "src", "-f", "Makefile", "-f"]
            .map(String::from)
            .to_vec();
        argv.push(mk_inside.display().to_string());
        argv.extend(self.make_args(&l.openssl));
        argv.push("portable-redis-objects".into());
        self.cx.steps.logged(
            &format!("{} compile", self.pin.id()),
            sb.command(&argv),
            &tree.logs.join("build.log"),
        )?;
        fs::remove_file(&mk)?;
        Ok(())
    }

    /// Redis's `make` against `openssl` (after [`RedisStep::compile`], only
    /// the links are left); the link maps, the memcpy check, the programs and
    /// the licences.
    fn link(&self, tree: RedisTree, openssl: &BuiltOpenssl) -> Result<BuiltRedis> {
        let (pin, src, logs) = (self.pin, &tree.src, &tree.logs);
        let (sb, l) = self.sandbox(&tree, &openssl.prefix)?;
        let mut argv = vec!["make".to_string()];
        argv.extend(self.make_args(&l.openssl));
        self.cx.steps.logged(
            &format!("{} link", pin.id()),
            sb.command(&argv),
            &logs.join("build.log"),
        )?;
        let staging = tree.staging.path();
        keep_link_maps(&sb, &l.src.join("src"), &staging.join("maps"))?;

        let started = std::time::Instant::now();
        let checked =
            check_memcpy_pinned(src, &self.cx.toolchain.zig(), &staging.join("memcpy-check"))
                .context("checking the memcpy pin in every object")?;
        fs::remove_dir_all(staging.join("memcpy-check")).ok();
        eprintln!(
            "  {}: memcpy pinned in all {} objects ({} of them LTO bitcode, lowered to check) in {:.1}s",
            pin.id(),
            checked.objects,
            checked.bitcode,
            started.elapsed().as_secs_f64()
        );

        let staged_bin = staging.join("bin");
        fs::create_dir_all(&staged_bin)?;
        for p in PROGRAMS {
            let built = src.join("src").join(p);
            if !built.is_file() {
                bail!(
                    "the build finished without {}; see {}",
                    built.display(),
                    logs.join("build.log").display()
                );
            }
            fs::copy(&built, staged_bin.join(p))?;
        }
        for alias in ALIASES {
            symlink("redis-server", staged_bin.join(alias))?;
        }
        let staged_etc = staging.join("etc");
        fs::create_dir_all(&staged_etc)?;
        for c in CONFIGS {
            fs::copy(src.join(c), staged_etc.join(c))
                .with_context(|| format!("copying {c} from {}", src.display()))?;
        }
        collect_licenses(src, pin, &staging.join("licenses"))?;
        fsutil::make_writable_and_remove(src)?;
        self.step.commit(tree.staging, None)?;
        Ok(self.built(false))
    }
}

/// A component Redis ships in its tree, with the hash of its pristine folder.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BundledComponent {
    pub name: String,
    pub version: String,
    pub license: String,
    pub note: Option<String>,
    pub tree: String,
}

impl BuiltRedis {
    /// `etc/`: redis.conf and sentinel.conf of the patched tree.
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    /// The bundled components recorded when this build ran.
    pub fn components(&self) -> Result<Vec<BundledComponent>> {
        let path = self.dir.join("components.json");
        let text = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("{} is not valid", path.display()))
    }
}

/// Hash each bundled component's folder in the pristine tree.
fn bundled_components(pristine: &Path, pin: &SourcePin, dest: &Path) -> Result<()> {
    let mut out = Vec::new();
    for b in &pin.bundled {
        let dir = pristine.join(&b.path);
        let tree = treehash::tree_hash(&dir).with_context(|| {
            format!(
                "{}: bundled component {} has no folder {} (vendor/sources.toml)",
                pin.id(),
                b.name,
                b.path
            )
        })?;
        out.push(BundledComponent {
            name: b.name.clone(),
            version: b.version.clone(),
            license: b.license.clone(),
            note: b.note.clone(),
            tree: tree.to_string(),
        });
    }
    fs::write(dest, serde_json::to_vec_pretty(&out)?)?;
    Ok(())
}

/// Keep each program's linker map (written in `link_dir`, as the build sees
/// it), completed with the cross-reference table of its dynamic imports.
fn keep_link_maps(sb: &Sandbox, link_dir: &Path, dest: &Path) -> Result<()> {
    let host_dir = sb.host_path(link_dir);
    fs::create_dir_all(dest)?;
    for p in PROGRAMS {
        let map = fs::read_to_string(host_dir.join(format!("{p}.map")))
            .with_context(|| format!("reading the linker map of {p}"))?;
        let binary = fs::read(host_dir.join(p)).with_context(|| format!("reading {p}"))?;
        let map =
            elfcheck::linkmap::complete_for(&map, &binary, |f| sb.host_path(&link_dir.join(f)))
                .with_context(|| format!("completing the linker map of {p}"))?;
        fsutil::write_atomic(&dest.join(format!("{p}.map")), map.as_bytes())?;
    }
    Ok(())
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

/// Copy the pin's licence files to `dest/<name-version>/`. An entry
/// `path#header` takes the file's leading comment (for sources whose licence
/// is only in their header, like linenoise.c).
fn collect_licenses(src: &Path, pin: &SourcePin, dest: &Path) -> Result<()> {
    for entry in &pin.licenses {
        let (path, header) = match entry.split_once('#') {
            Some((p, "header")) => (p, true),
            Some((_, other)) => bail!(
                "{}: licence entry `{entry}`: unknown selector `#{other}`",
                pin.id()
            ),
            None => (entry.as_str(), false),
        };
        let from = src.join(path);
        let text = fs::read(&from).with_context(|| {
            format!(
                "{}: licence file {path} (listed in vendor/sources.toml) is missing from the tree",
                pin.id()
            )
        })?;
        let bytes = if header {
            leading_comment(&text).into_bytes()
        } else {
            text
        };
        let to = dest.join(pin.id()).join(if header {
            format!("{path}.LICENSE")
        } else {
            path.to_string()
        });
        fs::create_dir_all(to.parent().unwrap_or(dest))?;
        fs::write(&to, bytes)?;
    }
    Ok(())
}

/// The leading comment of a C or C++ file: its first `/* … */` block, or
/// the `//` lines it starts with.
fn leading_comment(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    if s.trim_start().starts_with("//") {
        let lines: Vec<&str> = s
            .trim_start()
            .lines()
            .take_while(|l| l.starts_with("//"))
            .collect();
        return format!("{}\n", lines.join("\n"));
    }
    match (s.find("/*"), s.find("*/")) {
        (Some(a), Some(b)) if a < b => format!("{}\n", &s[a..b + 2]),
        _ => s.into_owned(),
    }
}

/// Every object file that calls memcpy must bind it to `memcpy@GLIBC_2.2.5`
/// (the symver patch forced into every translation unit): an object that
/// references plain `memcpy` was compiled without it.
///
/// Objects built with `-flto` hold LLVM bitcode, whose symbols the final link
/// decides; each is lowered to machine code with the pinned compiler
/// (`zig clang -c -x ir`, into `scratch`) and the result is checked the same
/// way, so the pin is proven for the modules LTO links too.
pub fn check_memcpy_pinned(tree: &Path, zig: &Path, scratch: &Path) -> Result<MemcpyCheck> {
    use object::{Object, ObjectSymbol};
    let mut unpinned = Vec::new();
    let mut check = MemcpyCheck::default();
    let sh = xshell::Shell::new()?;
    for path in walk_files(tree)? {
        if path.extension().and_then(|e| e.to_str()) != Some("o") {
            continue;
        }
        let rel = path
            .strip_prefix(tree)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut data = fs::read(&path)?;
        if is_bitcode(&data) {
            fs::create_dir_all(scratch)?;
            let lowered = scratch.join(format!("{}.o", check.bitcode));
            cmd!(
                sh,
                "{zig} clang -c -x ir -O0 -Wno-override-module {path} -o {lowered}"
            )
            .quiet()
            .run()
            .with_context(|| format!("lowering the LTO bitcode of {rel} to machine code"))?;
            data = fs::read(&lowered)?;
            fs::remove_file(&lowered)?;
            check.bitcode += 1;
        }
        let Ok(obj) = object::File::parse(&*data) else {
            continue;
        };
        check.objects += 1;
        if obj
            .symbols()
            .any(|s| s.is_undefined() && s.name() == Ok("memcpy"))
        {
            unpinned.push(rel);
        }
    }
    if check.objects == 0 {
        bail!("no object files found under {}", tree.display());
    }
    if !unpinned.is_empty() {
        bail!(
            "{} object file(s) call memcpy without the GLIBC_2.2.5 pin: {}",
            unpinned.len(),
            unpinned.join(", ")
        );
    }
    Ok(check)
}

/// How many objects the memcpy check read, and how many of them were LTO
/// bitcode lowered for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemcpyCheck {
    pub objects: usize,
    pub bitcode: usize,
}

/// LLVM bitcode, bare (`BC\xC0\xDE`) or in its wrapper (`0x0B17C0DE`).
fn is_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xC0\xDE") || data.starts_with(&[0xDE, 0xC0, 0x17, 0x0B])
}

fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of both steps (OpenSSL, then Redis on that OpenSSL) for one
    /// set of inputs.
    struct Inputs {
        project: Project,
        toolchain: Toolchain,
        flags: BuildFlags,
        openssl: SourcePin,
        redis: SourcePin,
        openssl_series: Series,
        series: Series,
    }

    impl Inputs {
        fn keys(&self) -> (String, String) {
            let cx = BuildContext {
                project: &self.project,
                toolchain: &self.toolchain,
                flags: &self.flags,
                steps: &StepLog::default(),
            };
            let openssl = OpensslStep::new(&cx, &self.openssl, &self.openssl_series)
                .unwrap()
                .step
                .key;
            let redis = RedisStep::new(&cx, &self.redis, &self.series, &openssl)
                .step
                .key;
            (openssl, redis)
        }
    }

    fn inputs() -> Inputs {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pins = crate::pins::Pins::load(&root).unwrap();
        Inputs {
            project: Project::new(root.clone(), PathBuf::from("/state/one")),
            toolchain: Toolchain {
                dir: PathBuf::from("/toolchains/one"),
                version: pins.toolchain.zig_version.clone(),
                identity: "wheel sha256:1111".into(),
                pin: pins.toolchain.clone(),
            },
            flags: BuildFlags::new(SandboxKind::Bwrap, 1_700_000_000, 2),
            openssl: pins.openssl.clone(),
            redis: pins.redis[0].clone(),
            openssl_series: Series::empty(Path::new("patches/openssl/3.5")),
            series: Series::empty(Path::new("patches/redis/7.0")),
        }
    }

    /// Every input of a build step changes its key (so a changed input
    /// rebuilds), and nothing else does (so a moved state folder, another
    /// -j or another toolchain path rebuild nothing).
    #[test]
    fn every_input_of_a_build_step_changes_its_key_and_nothing_else_does() {
        let (openssl, redis) = inputs().keys();
        let patch =
            crate::patch::parse("0001-x.patch", "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n").unwrap();
        type Change = (&'static str, fn(&mut Inputs, &crate::patch::Patch));
        // (what, change, changes the OpenSSL key too)
        let inputs_of_both: [Change; 11] = [
            ("the OpenSSL tree", |i, _| {
                i.openssl.tree = i.redis.tree.clone()
            }),
            ("the OpenSSL version", |i, _| {
                i.openssl.version.push_str(".1")
            }),
            ("OpenSSL's release date", |i, _| {
                i.openssl.released = "2001-01-01".into()
            }),
            ("an OpenSSL patch", |i, p| {
                i.openssl_series.patches.push(p.clone())
            }),
            ("the toolchain", |i, _| {
                i.toolchain.identity = "wheel sha256:2222".into()
            }),
            ("the target", |i, _| i.toolchain.pin.target.push('9')),
            ("the CPU", |i, _| i.toolchain.pin.cpu = "x86_64_v2".into()),
            ("the sandbox", |i, _| i.flags.sandbox = SandboxKind::None),
            ("OpenSSL's Configure", |i, _| {
                i.flags.openssl_configure.push("no-ocsp".into())
            }),
            ("a C flag", |i, _| i.flags.cflags.push("-O3".into())),
            ("a link flag", |i, _| i.flags.ldflags.push("-s".into())),
        ];
        for (what, change) in inputs_of_both {
            let mut i = inputs();
            change(&mut i, &patch);
            let (o, r) = i.keys();
            assert_ne!(o, openssl, "{what} must change the OpenSSL key");
            assert_ne!(r, redis, "{what} must change the Redis key");
        }
        // Redis's own inputs leave the OpenSSL build alone.
        let redis_only: [Change; 4] = [
            ("a Redis patch", |i, p| i.series.patches.push(p.clone())),
            ("the Redis tree", |i, _| {
                i.redis.tree = i.openssl.tree.clone()
            }),
            ("the Redis version", |i, _| i.redis.version.push_str(".1")),
            ("SOURCE_DATE_EPOCH", |i, _| i.flags.source_date_epoch += 1),
        ];
        for (what, change) in redis_only {
            let mut i = inputs();
            change(&mut i, &patch);
            let (o, r) = i.keys();
            assert_eq!(o, openssl, "{what} must not change the OpenSSL key");
            assert_ne!(r, redis, "{what} must change the Redis key");
        }
        // Where things are and how fast they build are not inputs.
        let not_inputs: [Change; 6] = [
            ("-j", |i, _| i.flags.jobs = 16),
            ("the state folder", |i, _| {
                i.project.state = "/state/two".into()
            }),
            ("the toolchain's folder", |i, _| {
                i.toolchain.dir = "/toolchains/two".into()
            }),
            ("the series folder", |i, _| {
                i.series.dir = "/elsewhere".into()
            }),
            ("the download addresses", |i, _| {
                i.openssl
                    .urls
                    .push("https://example.invalid/x.tar.gz".into());
                i.redis.archives.push("x.tar.gz".into())
            }),
            ("the checkout's folder", |i, _| {
                i.project.root = "/another/checkout".into()
            }),
        ];
        for (what, change) in not_inputs {
            let mut i = inputs();
            change(&mut i, &patch);
            assert_eq!(i.keys(), (openssl.clone(), redis.clone()), "{what}");
        }
    }

    #[test]
    fn licence_headers_of_c_and_cxx_files() {
        let c = b"/* Copyright (c) A\n * BSD */\n#include <x.h>\n/* other */\n";
        assert_eq!(leading_comment(c), "/* Copyright (c) A\n * BSD */\n");
        let cxx = b"// fast_float\n//\n//    MIT License\n\n#ifndef X\n// later\n";
        assert_eq!(
            leading_comment(cxx),
            "// fast_float\n//\n//    MIT License\n"
        );
    }

    #[test]
    fn recognises_bitcode_objects() {
        assert!(is_bitcode(b"BC\xC0\xDE\x35\x14"));
        assert!(is_bitcode(&[0xDE, 0xC0, 0x17, 0x0B, 0, 0]));
        assert!(!is_bitcode(b"\x7fELF\x02\x01"));
    }
}
