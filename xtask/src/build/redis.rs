//! The Redis step: the patched tree compiled beside OpenSSL, linked against it,
//! with its link maps, bundled components and licences kept.

use super::*;

/// The Redis link writes each program's linker map (lld's `--print-map`,
/// zig's driver has no `-Map`) to `src/<program>.map`; the build keeps it,
/// completed with a cross-reference table, in `maps/` next to `bin/` so
/// verify can name the object behind each symbol.
pub const LINK_MAP_RECIPE: &str = "REDIS_LD=$(CC) $(FINAL_LDFLAGS) -Wl,--print-map >$@.map";

/// Read after Redis's `src/Makefile`: a goal for every object of the three
/// programs, which need OpenSSL's headers but not its libraries (only the
/// link does). `REDIS_VEC_SETS_OBJ` is 8.0's, empty in 7.0.
const OBJECTS_MK: &str = "\
# Written by cargo xtask: compile everything, link nothing.
portable-redis-objects: $(REDIS_SERVER_OBJ) $(REDIS_VEC_SETS_OBJ) $(REDIS_CLI_OBJ) $(REDIS_BENCHMARK_OBJ)
.PHONY: portable-redis-objects
";

/// The Redis step before it runs: its key and output folder.
pub(super) struct RedisStep<'a> {
    cx: &'a BuildContext<'a>,
    pin: &'a SourcePin,
    pub(super) step: CachedStep,
}

/// A Redis staging folder with the patched tree.
pub(super) struct RedisTree {
    staging: Staging,
    src: PathBuf,
    logs: PathBuf,
}

impl<'a> RedisStep<'a> {
    pub(super) fn new(
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

    pub(super) fn cached(&self) -> Option<BuiltRedis> {
        self.step.cached(|out| {
            out.join("bin/redis-server")
                .is_file()
                .then(|| self.built(true))
        })
    }

    /// Redis's `make` arguments, with OpenSSL's prefix at `ossl` as the build
    /// sees it.
    fn make_args(&self, ossl: &Path, pgo: &[String]) -> Vec<String> {
        let ossl = ossl.display();
        let mut make = vec![format!("-j{}", self.cx.flags.jobs)];
        make.extend(self.cx.flags.make_variables().cloned());
        make.extend(pgo.iter().cloned());
        make.push(format!("OPENSSL_PREFIX={ossl}"));
        make.push(format!("LIBSSL_LIBS={ossl}/lib/libssl.a"));
        make.push(format!(
            "LIBCRYPTO_LIBS={ossl}/lib/libcrypto.a -ldl -pthread"
        ));
        make.push(LINK_MAP_RECIPE.into());
        make
    }

    /// A sandbox for this build: the tree at `/build/src`, `openssl_host` at
    /// `/build/openssl`, the compile flags in the environment; with the make
    /// variables of the build's profile-guided optimisation.
    fn sandbox(
        &self,
        tree: &RedisTree,
        openssl_host: &Path,
    ) -> Result<(Sandbox, Layout, Vec<String>)> {
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
        let pgo = self.cx.flags.pgo.make_args(&mut sb);
        Ok((sb, l, pgo))
    }

    /// Patch the tree into a staging folder.
    pub(super) fn prepare(
        &self,
        patched: impl FnOnce(&Path) -> Result<PathBuf>,
    ) -> Result<RedisTree> {
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
    pub(super) fn compile(&self, tree: &RedisTree, openssl_host: &Path) -> Result<()> {
        let mk = tree.staging.path().join("objects.mk");
        fsutil::write_atomic(&mk, OBJECTS_MK.as_bytes())?;
        let (mut sb, l, pgo) = self.sandbox(tree, openssl_host)?;
        let mk_inside = sb.mount(&mk, "/build/objects.mk", false);
        let mut argv = ["make", "-C", "src", "-f", "Makefile", "-f"]
            .map(String::from)
            .to_vec();
        argv.push(mk_inside.display().to_string());
        argv.extend(self.make_args(&l.openssl, &pgo));
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
    pub(super) fn link(&self, tree: RedisTree, openssl: &BuiltOpenssl) -> Result<BuiltRedis> {
        let (pin, src, logs) = (self.pin, &tree.src, &tree.logs);
        let (sb, l, pgo) = self.sandbox(&tree, &openssl.prefix)?;
        let mut argv = vec!["make".to_string()];
        argv.extend(self.make_args(&l.openssl, &pgo));
        self.cx.steps.logged(
            &format!("{} link", pin.id()),
            sb.command(&argv),
            &logs.join("build.log"),
        )?;
        let staging = tree.staging.path();
        keep_link_maps(&sb, &l.src.join("src"), &staging.join("maps"))?;

        if src.join(MEMCPY_PIN_HEADER).is_file() {
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
        } else {
            eprintln!(
                "  {}: no memcpy pin in this target's series ({MEMCPY_PIN_HEADER} absent): nothing to check",
                pin.id()
            );
        }

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

/// Copy the pin's licence files to `dest/<name-version>/`. An entry
/// `path#header` takes the file's leading comment (for sources whose licence
/// is only in their header, like linenoise.c).
pub(super) fn collect_licenses(src: &Path, pin: &SourcePin, dest: &Path) -> Result<()> {
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
pub(super) fn leading_comment(text: &[u8]) -> String {
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
