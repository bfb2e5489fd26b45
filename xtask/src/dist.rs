//! Stage 6, dist: the whole pipeline, top to bottom.
//!
//! vendor → patch → toolchain → build (OpenSSL, Redis) → strip → verify →
//! package (deterministic tar.gz, BUILDINFO.json, verify report, licences,
//! SHA256SUMS) → smoke (the packaged binaries, TLS PING).

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    archive,
    build::{self, BuildContext, BuildFlags, BuiltOpenssl, BuiltRedis},
    fsutil,
    patch::Series,
    pins::{Pins, SourcePin},
    project::Project,
    sandbox::{Sandbox, SandboxKind},
    smoke, strip,
    tarball::TarTree,
    toolchain::{self, Toolchain},
    treehash,
    vendor::VendorOptions,
    verify,
};

pub const BUILDINFO_SCHEMA: &str = "portable-redis/buildinfo";

#[derive(Debug, Clone)]
pub struct DistOptions {
    /// Redis line or version to build (`7.0`, `8.0.2`); the first pin if unset.
    pub redis: Option<String>,
    pub vendor: VendorOptions,
    pub sandbox: SandboxKind,
    pub zig: Option<PathBuf>,
    /// Where releases are written (default `dist/`).
    pub out: PathBuf,
    pub jobs: usize,
    pub smoke: bool,
}

/// A packaged, verified release.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub tarball: PathBuf,
    pub sha256: String,
    pub verify: verify::VerifyReport,
    pub smoke: Option<smoke::SmokeReport>,
    pub built: BuiltRedis,
    pub openssl: BuiltOpenssl,
}

/// Everything a release was made from, and every output's hash.
#[derive(Debug, Clone, Serialize)]
pub struct BuildInfo {
    pub schema: &'static str,
    pub schema_version: u32,
    pub release: String,
    pub source_date_epoch: u64,
    pub sources: Vec<SourceInfo>,
    pub patches: Vec<PatchInfo>,
    pub toolchain: ToolchainInfo,
    pub flags: BuildFlags,
    pub sandbox: SandboxKind,
    pub build_keys: BuildKeys,
    pub outputs: Vec<OutputInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceInfo {
    pub name: String,
    pub version: String,
    pub tree: String,
    pub released: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatchInfo {
    pub series: String,
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolchainInfo {
    pub zig_version: String,
    pub identity: String,
    pub target: String,
    pub cpu: String,
    pub opt: String,
    pub wrappers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildKeys {
    pub openssl: String,
    pub redis: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputInfo {
    pub path: String,
    pub sha256: String,
    pub build_id: Option<String>,
}

/// Release name, e.g. `portable-redis-7.0.15-x86_64-linux-glibc2.11`.
pub fn release_name(redis: &SourcePin, toolchain: &Toolchain) -> String {
    format!(
        "portable-redis-{}-x86_64-linux-glibc{}",
        redis.version,
        toolchain.glibc()
    )
}

pub fn run(project: &Project, opts: &DistOptions) -> Result<Release> {
    let pins = Pins::load(&project.root)?;
    let redis_pin = pins.redis(opts.redis.as_deref())?.clone();
    let _lock = project.lock()?;
    Sandbox::preflight(opts.sandbox)?;
    eprintln!(
        "dist: Redis {} with OpenSSL {}",
        redis_pin.version, pins.openssl.version
    );

    let toolchain = toolchain::provision(project, &pins.toolchain, opts.zig.as_deref())?;
    let flags = BuildFlags::new(opts.sandbox, redis_pin.release_epoch()?, opts.jobs);
    let series_dir = redis_pin
        .patches_dir(&project.root)
        .with_context(|| format!("the {} pin names no patch series", redis_pin.id()))?;
    let series = Series::load(&series_dir)?;
    let cx = BuildContext {
        project,
        toolchain: &toolchain,
        flags: &flags,
    };

    let (openssl, built) = build::openssl_and_redis(&cx, &pins, &redis_pin, &series, &opts.vendor)?;

    let name = release_name(&redis_pin, &toolchain);
    let scratch = project.scratch().join(&name);
    fs::create_dir_all(&scratch)?;
    let staging = fsutil::Staging::beside(&scratch.join("package"))?;

    // Strip into staging, then verify exactly the bytes that will be packaged.
    let bin = staging.path().join("bin");
    fs::create_dir_all(&bin)?;
    let mut outputs = Vec::new();
    for p in build::PROGRAMS {
        let unstripped = fs::read(built.bin.join(p))?;
        let stripped = strip::strip(&unstripped).with_context(|| format!("stripping {p}"))?;
        fs::write(bin.join(p), &stripped)?;
        outputs.push(OutputInfo {
            path: format!("bin/{p}"),
            sha256: treehash::sha256_bytes(&stripped),
            build_id: strip::build_id(&stripped)?,
        });
    }
    let programs: Vec<PathBuf> = build::PROGRAMS.iter().map(|p| bin.join(p)).collect();
    let report = verify::verify_paths(
        &programs,
        &verify::Policy {
            glibc: toolchain.glibc().to_string(),
        },
    );
    let report = relabel(report, &bin, "bin");
    if !report.passed() {
        bail!(
            "verify refused the release; nothing was packaged:\n{}",
            report.human()
        );
    }
    eprint!("{}", report.human());

    let info = BuildInfo {
        schema: BUILDINFO_SCHEMA,
        schema_version: 1,
        release: name.clone(),
        source_date_epoch: flags.source_date_epoch,
        sources: [&pins.openssl, &redis_pin]
            .iter()
            .map(|p| SourceInfo {
                name: p.name.clone(),
                version: p.version.clone(),
                tree: p.tree.to_string(),
                released: p.released.clone(),
            })
            .collect(),
        patches: series
            .fingerprint()
            .into_iter()
            .map(|(name, sha256)| PatchInfo {
                series: rel(&project.root, &series_dir),
                name,
                sha256,
            })
            .collect(),
        toolchain: ToolchainInfo {
            zig_version: toolchain.version.clone(),
            identity: toolchain.identity.clone(),
            target: toolchain.pin.target.clone(),
            cpu: toolchain.pin.cpu.clone(),
            opt: toolchain.pin.opt.clone(),
            wrappers: toolchain
                .wrappers(Path::new("/toolchain/zig/zig"))
                .into_iter()
                .map(|(n, b)| (n.to_string(), b))
                .collect(),
        },
        flags: flags.clone(),
        sandbox: opts.sandbox,
        build_keys: BuildKeys {
            openssl: openssl.key.clone(),
            redis: built.key.clone(),
        },
        outputs,
    };

    let mut tree = TarTree::new();
    let top = |p: &str| format!("{name}/{p}");
    for p in build::PROGRAMS {
        tree.add_file_from(&top(&format!("bin/{p}")), &bin.join(p), true)?;
    }
    for alias in build::ALIASES {
        tree.symlink(&top(&format!("bin/{alias}")), "redis-server");
    }
    for (path, bytes) in licenses(project, &toolchain, &built, &openssl)? {
        tree.file(&top(&format!("LICENSES/{path}")), bytes, false);
    }
    tree.file(&top("BUILDINFO.json"), json_bytes(&info)?, false);
    tree.file(
        &top("VERIFY.json"),
        format!("{}\n", report.to_json()).into_bytes(),
        false,
    );
    tree.file(&top("VERIFY.txt"), report.human().into_bytes(), false);

    let tarball = opts.out.join(format!("{name}.tar.gz"));
    let bytes = tree.tar_gz_bytes(flags.source_date_epoch)?;
    let sha256 = treehash::sha256_bytes(&bytes);
    if fs::read(&tarball)
        .map(|b| treehash::sha256_bytes(&b))
        .ok()
        .as_deref()
        != Some(sha256.as_str())
    {
        fsutil::write_atomic(&tarball, &bytes)?;
    }
    write_sha256sums(&opts.out)?;
    eprintln!("  packaged {} (sha256 {sha256})", tarball.display());

    let smoke = if opts.smoke {
        let report = smoke_packaged(&tarball, &name, &scratch)?;
        eprintln!(
            "  smoke: Redis {} answered {} over TCP and {} over TLS",
            report.server_version, report.plain_ping, report.tls_ping
        );
        Some(report)
    } else {
        None
    };
    drop(staging);
    Ok(Release {
        name,
        tarball,
        sha256,
        verify: report,
        smoke,
        built,
        openssl,
    })
}

/// Paths in the report as they appear in the release (`bin/redis-server`).
fn relabel(mut report: verify::VerifyReport, dir: &Path, label: &str) -> verify::VerifyReport {
    for f in &mut report.files {
        if let Ok(rest) = Path::new(&f.path).strip_prefix(dir) {
            f.path = format!("{label}/{}", rest.display());
        }
    }
    report
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

fn json_bytes(v: &impl Serialize) -> Result<Vec<u8>> {
    let mut s = serde_json::to_string_pretty(v)?;
    s.push('\n');
    Ok(s.into_bytes())
}

/// Licence files of every component: `<component>/<path>` → bytes.
fn licenses(
    project: &Project,
    toolchain: &Toolchain,
    redis: &BuiltRedis,
    openssl: &BuiltOpenssl,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for dir in [
        redis.dir.join("licenses"),
        openssl.prefix.join("../licenses"),
    ] {
        for path in walk(&dir)? {
            let rel = path
                .strip_prefix(&dir)
                .unwrap_or(&path)
                .display()
                .to_string();
            out.push((rel, fs::read(&path)?));
        }
    }
    let zig_license = toolchain.dir.join("LICENSE");
    if zig_license.is_file() {
        out.push((
            format!("zig-{}/LICENSE", toolchain.version),
            fs::read(zig_license)?,
        ));
    }
    let _ = project;
    if out.is_empty() {
        bail!("no licence files were collected; check `licenses` in vendor/sources.toml");
    }
    Ok(out)
}

fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_type()?.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `SHA256SUMS` over every release file in `dir`.
pub fn write_sha256sums(dir: &Path) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("portable-redis-") && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut text = String::new();
    for n in names {
        text.push_str(&format!("{}  {n}\n", treehash::sha256_file(&dir.join(&n))?));
    }
    fsutil::write_atomic(&dir.join("SHA256SUMS"), text.as_bytes())
}

/// Unpack the release and smoke-test the packaged binaries.
pub fn smoke_packaged(tarball: &Path, name: &str, scratch: &Path) -> Result<smoke::SmokeReport> {
    let unpacked = fsutil::Staging::beside(&scratch.join("smoke"))?;
    archive::unpack(tarball, unpacked.path())?;
    let bin = unpacked.path().join(name).join("bin");
    smoke::smoke(&bin, &unpacked.path().join("run"))
        .with_context(|| format!("smoke test of {}", tarball.display()))
}

impl DistOptions {
    pub fn from_args(project: &Project, args: crate::flags::DistArgs) -> Result<DistOptions> {
        let out = if args.out.is_absolute() {
            args.out.clone()
        } else {
            project.root.join(&args.out)
        };
        let jobs = args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        Ok(DistOptions {
            redis: args.source.redis.clone(),
            vendor: args.source.vendor_options(),
            sandbox: args.sandbox,
            zig: args.zig.clone(),
            out,
            jobs,
            smoke: !args.no_smoke,
        })
    }
}
