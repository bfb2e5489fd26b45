//! Stage 6, dist: the whole pipeline, top to bottom.
//!
//! vendor → patch → toolchain → build (OpenSSL, Redis) → strip → verify →
//! package → smoke. A release is written to `dist/`:
//!
//! * `<name>.tar.gz`: stripped binaries, licences, BUILDINFO.json, the SBOM
//!   and the verify report (deterministic: see `tarball.rs`);
//! * `<name>-debug.tar.gz`: the unstripped binaries as `.build-id/xx/yyyy.debug`;
//! * `<name>.buildinfo.json`, `<name>.cdx.json`: the same BUILDINFO (plus the
//!   archives' hashes) and SBOM, readable without unpacking;
//! * `SHA256SUMS` over every release file in the folder.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    advisories::{self, Advisories},
    archive, audit,
    build::{self, BuildFlags, BuiltOpenssl, BuiltRedis},
    fsutil, layout,
    patch::{Patch, Series},
    pins::{Pins, SourcePin},
    project::Project,
    provenance,
    sandbox::SandboxKind,
    sbom,
    session::{BuildSession, SessionOptions},
    signature, smoke, strip,
    tarball::{Level, TarTree},
    toolchain::Toolchain,
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
    /// Open high or critical CVEs to package anyway (`--allow-cve`).
    pub allow_cve: Vec<String>,
    /// Sign SHA256SUMS with this OpenSSH key (`--sign`).
    pub sign: Option<PathBuf>,
}

impl DistOptions {
    /// The defaults of `cargo xtask dist`: sandboxed, the pinned zig, into
    /// `dist/`, a job per CPU, no CVE allowed, unsigned.
    pub fn new(project: &Project, redis: Option<String>, vendor: VendorOptions) -> DistOptions {
        DistOptions {
            redis,
            vendor,
            sandbox: SandboxKind::Bwrap,
            zig: None,
            out: project.root.join("dist"),
            jobs: crate::run::cpus(),
            allow_cve: Vec::new(),
            sign: None,
        }
    }
}

/// A packaged, verified release.
#[derive(Debug, Clone)]
pub struct Release {
    pub name: String,
    pub tarball: PathBuf,
    pub debug_tarball: PathBuf,
    pub sha256: String,
    pub verify: verify::VerifyReport,
    pub smoke: smoke::SmokeReport,
    pub built: BuiltRedis,
    pub openssl: BuiltOpenssl,
}

/// How the line `dist` ends with starts: `dist: done in 51.3s (build 45.7s,
/// strip and verify 0.2s, …)`.
pub const DONE_LINE: &str = "dist: done in ";

/// Where a `dist` spent its time, stage by stage.
struct Stages {
    last: std::time::Instant,
    parts: Vec<(&'static str, std::time::Duration)>,
}

impl Stages {
    fn start() -> Stages {
        Stages {
            last: std::time::Instant::now(),
            parts: Vec::new(),
        }
    }

    /// Record the time since the last mark as `stage`'s.
    fn mark(&mut self, stage: &'static str) {
        let now = std::time::Instant::now();
        self.parts.push((stage, now - self.last));
        self.last = now;
    }

    /// The line `dist` ends with (see [`DONE_LINE`]).
    fn summary(&self) -> String {
        let total: f64 = self.parts.iter().map(|(_, d)| d.as_secs_f64()).sum();
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(s, d)| format!("{s} {:.1}s", d.as_secs_f64()))
            .collect();
        format!("{DONE_LINE}{total:.1}s ({})", parts.join(", "))
    }
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
    pub security: SecurityInfo,
    pub toolchain: ToolchainInfo,
    pub flags: BuildFlags,
    pub sandbox: SandboxKind,
    pub build_keys: BuildKeys,
    /// The verify policy the binaries passed.
    pub verify_policy: PolicyInfo,
    /// Every file in the release archive (but this one) with its hash.
    pub outputs: Vec<OutputInfo>,
    /// The debug files, keyed by build-id.
    pub debug: Vec<OutputInfo>,
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
    /// The component it is applied to (`redis`, `openssl`).
    pub component: String,
    /// Our series folder (`patches/redis/7.0`), or the security queue's
    /// archive (`redis_7.0.15-1~deb12u10.debian.tar.xz`).
    pub series: String,
    pub name: String,
    pub sha256: String,
    /// The CVEs it fixes (vendor/advisories.toml).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cves: Vec<String>,
    /// Test files of it that are not applied (vendor/sources.toml says why).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// What the release knows about vulnerabilities.
#[derive(Debug, Clone, Serialize)]
pub struct SecurityInfo {
    /// SHA-256 of vendor/advisories.toml as it was read.
    pub advisories_sha256: String,
    /// The distribution queues applied: component, Debian version, archive, hash.
    pub queues: Vec<QueueInfo>,
    /// Open CVEs packaged by `--allow-cve`.
    pub allowed_cves: Vec<String>,
    /// Every open CVE (below high, or allowed), by id.
    pub open_cves: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueInfo {
    pub component: String,
    pub debian: String,
    pub archive: String,
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
pub struct PolicyInfo {
    /// `x86_64-linux-gnu.2.11` (policy/<name>.toml).
    pub name: String,
    pub sha256: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// The release archives' hashes, added to the BUILDINFO copy beside them.
#[derive(Debug, Clone, Serialize)]
struct ReleaseBuildInfo<'a> {
    #[serde(flatten)]
    info: &'a BuildInfo,
    archives: Vec<OutputInfo>,
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
    if let Some(key) = &opts.sign {
        signature::check_key(key)?;
    }
    let pins = project.pins()?;
    eprintln!(
        "dist: Redis {} with OpenSSL {}",
        pins.redis(opts.redis.as_deref())?.version,
        pins.openssl.version
    );
    let mut stages = Stages::start();

    // the build session (lock, sandbox, toolchain, flags, both series) →
    // audit → build (vendor and patch only run when a build is needed; the
    // series, security queues included, key it)
    let session = BuildSession::open(
        project,
        &SessionOptions {
            redis: opts.redis.clone(),
            sandbox: opts.sandbox,
            zig: opts.zig.clone(),
            jobs: opts.jobs,
            vendor: opts.vendor.clone(),
        },
    )?;
    let redis_pin = &session.redis;
    let (toolchain, flags) = (&session.toolchain, &session.flags);
    let (series, openssl_series) = (&session.series, &session.openssl_series);
    let audit = audit_release(project, pins, redis_pin, series, openssl_series, opts)?;
    let line = Line {
        project,
        pins,
        redis: redis_pin,
        series,
        openssl_series,
        audit: &audit,
        toolchain,
        flags,
    };

    let (openssl, built) = session.build(series)?;
    let unstripped = build::PROGRAMS
        .iter()
        .map(|p| Ok((p.to_string(), fs::read(built.bin.join(p))?)))
        .collect::<Result<Vec<_>>>()?;
    let absent = advisories::check_absent(&audit.findings, &unstripped)?;
    eprintln!(
        "  audit: none of the {absent} functions that not-affected statements say are absent is in the binaries"
    );
    stages.mark("build");

    // strip → verify exactly the bytes that will be packaged
    let name = release_name(&redis_pin, &toolchain);
    let mut release = TarTree::new();
    let mut debug = TarTree::new();
    let mut outputs = Vec::new();
    let mut debug_outputs = Vec::new();
    let scratch = fsutil::Staging::beside(&project.scratch().join(&name))?;
    let bin = scratch.path().join("bin");
    fs::create_dir_all(&bin)?;
    for (p, unstripped) in unstripped {
        let stripped = strip::strip(&unstripped).with_context(|| format!("stripping {p}"))?;
        let id = strip::build_id(&stripped)?
            .with_context(|| format!("{p} has no GNU build-id; the link must pass --build-id"))?;
        fs::write(bin.join(&p), &stripped)?;
        fs::set_permissions(bin.join(&p), fs::Permissions::from_mode(0o755))?;
        let debug_path = debug_path(&id);
        debug_outputs.push(OutputInfo {
            path: debug_path.clone(),
            sha256: treehash::sha256_bytes(&unstripped),
            build_id: Some(id.clone()),
        });
        debug.file(&debug_path, unstripped, false);
        outputs.push(OutputInfo {
            path: format!("bin/{p}"),
            sha256: treehash::sha256_bytes(&stripped),
            build_id: Some(id),
        });
        release.file(&format!("{name}/bin/{p}"), stripped, true);
    }
    for alias in build::ALIASES {
        release.symlink(&format!("{name}/bin/{alias}"), "redis-server");
    }
    let programs: Vec<PathBuf> = build::PROGRAMS.iter().map(|p| bin.join(p)).collect();
    let mut policy = verify::load_policy(project, None)?;
    let wanted = format!("{}.{}", policy.target, policy.glibc);
    if toolchain.pin.target != wanted {
        bail!(
            "vendor/sources.toml's toolchain targets {} but the verify policy {} is for {wanted}: \
             make them agree",
            toolchain.pin.target,
            verify::DEFAULT_POLICY
        );
    }
    policy.openssl = Some(pins.openssl.version.clone());
    let abi = verify::GlibcAbi::load(&toolchain.abilists(), &policy)?;
    let extras = verify::Extras {
        hosts: Vec::new(),
        maps: build::PROGRAMS
            .iter()
            .map(|p| built.dir.join("maps").join(format!("{p}.map")))
            .filter(|m| m.is_file())
            .collect(),
    };
    let mut report = verify::check(&programs, &policy, &abi, &extras)?;
    report.relabel(&bin, "bin");
    report.relabel(&built.dir, "build");
    report.relabel(&toolchain.dir, &format!("zig-{}", toolchain.version));
    eprint!("{}", report.human());
    if !report.passed() {
        bail!("verify refused the release; nothing was packaged");
    }
    stages.mark("strip and verify");

    // smoke the staged binaries: the bytes the archive will hold
    let smoke = smoke::smoke(&bin, &scratch.path().join("smoke"))
        .context("smoke test of the stripped binaries")?;
    eprintln!(
        "  smoke: Redis {} answered {} over TCP and {} over TLS",
        smoke.server_version, smoke.plain_ping, smoke.tls_ping
    );
    stages.mark("smoke");

    // package
    let add = |tree: &mut TarTree, path: String, bytes: Vec<u8>, outputs: &mut Vec<OutputInfo>| {
        outputs.push(OutputInfo {
            path: path.clone(),
            sha256: treehash::sha256_bytes(&bytes),
            build_id: None,
        });
        tree.file(&format!("{name}/{path}"), bytes, false);
    };
    for (path, bytes) in licenses(&toolchain, &built, &openssl)? {
        add(
            &mut release,
            format!("LICENSES/{path}"),
            bytes,
            &mut outputs,
        );
    }
    let bom = sbom::bom(
        &name,
        &redis_pin.version,
        flags.source_date_epoch,
        &sbom_sources(&line, &built)?,
        &vulnerabilities(&audit),
    );
    let bom_bytes = json_bytes(&bom)?;
    add(
        &mut release,
        "share/doc/sbom.cdx.json".into(),
        bom_bytes.clone(),
        &mut outputs,
    );
    add(
        &mut release,
        "share/doc/VERIFY.json".into(),
        format!("{}\n", report.to_json()).into_bytes(),
        &mut outputs,
    );
    add(
        &mut release,
        "share/doc/VERIFY.txt".into(),
        report.human().into_bytes(),
        &mut outputs,
    );
    let tree_files = host_files(&line, &name, &built, &policy, &report, &smoke)?;
    for f in tree_files {
        outputs.push(OutputInfo {
            path: f.path.clone(),
            sha256: treehash::sha256_bytes(&f.bytes),
            build_id: None,
        });
        release.file(&format!("{name}/{}", f.path), f.bytes, f.executable);
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    let info = build_info(
        &line,
        &name,
        &openssl,
        &built,
        &policy,
        outputs,
        debug_outputs,
    );
    release.file(&format!("{name}/BUILDINFO.json"), json_bytes(&info)?, false);

    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let tarball = opts.out.join(format!("{name}.tar.gz"));
    let debug_tarball = opts.out.join(format!("{name}-debug.tar.gz"));
    // The two archives compress at once, one per thread.
    let epoch = flags.source_date_epoch;
    let (sha256, debug_sha256) = std::thread::scope(|s| {
        let debug =
            s.spawn(|| write_tar_gz(project, &debug, epoch, Level::Default, &debug_tarball));
        let release = write_tar_gz(project, &release, epoch, Level::Best, &tarball);
        let debug = debug
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the debug archive's thread panicked")));
        Ok::<_, anyhow::Error>((release?, debug?))
    })?;
    let archives = vec![
        OutputInfo {
            path: file_name(&tarball),
            sha256: sha256.clone(),
            build_id: None,
        },
        OutputInfo {
            path: file_name(&debug_tarball),
            sha256: debug_sha256,
            build_id: None,
        },
    ];
    publish(&line, opts, &name, &info, archives, &bom_bytes)?;
    eprintln!("  packaged {} (sha256 {sha256})", tarball.display());
    stages.mark("package");

    eprintln!("{}", stages.summary());
    Ok(Release {
        name,
        tarball,
        debug_tarball,
        sha256,
        verify: report,
        smoke,
        built,
        openssl,
    })
}

/// What a release line is built from: the pins, both series, the audit and
/// the toolchain (every record of the release reads from it).
struct Line<'a> {
    project: &'a Project,
    pins: &'a Pins,
    redis: &'a SourcePin,
    series: &'a Series,
    openssl_series: &'a Series,
    audit: &'a audit::LineAudit,
    toolchain: &'a Toolchain,
    flags: &'a BuildFlags,
}

/// The release tree's files for hosts and people (`layout.rs`): Redis's
/// configuration files as the build kept them, the service files and
/// install.sh, README and RELEASE.md.
fn host_files(
    line: &Line,
    name: &str,
    built: &BuiltRedis,
    policy: &verify::Policy,
    report: &verify::VerifyReport,
    smoke: &smoke::SmokeReport,
) -> Result<Vec<layout::TreeFile>> {
    let mut files = layout::service_files();
    for c in build::CONFIGS {
        let path = built.etc().join(c);
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "reading {}: the cached Redis build has no etc/; remove {} and run dist again",
                path.display(),
                built.dir.display()
            )
        })?;
        files.push(layout::TreeFile {
            path: format!("etc/{c}"),
            bytes,
            executable: false,
        });
    }
    files.push(layout::readme(&layout::ReadmeFacts {
        redis: &line.redis.version,
        openssl: &line.pins.openssl.version,
        glibc: &policy.glibc.to_string(),
        kernel: &policy.kernel.to_string(),
    }));
    files.push(layout::release_notes(&release_facts(
        line, name, report, smoke,
    ))?);
    Ok(files)
}

/// Beside the archives: the BUILDINFO with their hashes, the SBOM, the
/// provenance, SHA256SUMS and (with `--sign`) its signature; a signature of
/// an earlier SHA256SUMS is removed.
fn publish(
    line: &Line,
    opts: &DistOptions,
    name: &str,
    info: &BuildInfo,
    archives: Vec<OutputInfo>,
    bom_bytes: &[u8],
) -> Result<()> {
    let subjects = archives
        .iter()
        .map(|a| (a.path.clone(), a.sha256.clone()))
        .collect();
    let beside = json_bytes(&ReleaseBuildInfo { info, archives })?;
    write_if_changed(&opts.out.join(format!("{name}.buildinfo.json")), &beside)?;
    write_if_changed(&opts.out.join(format!("{name}.cdx.json")), bom_bytes)?;
    let toolchain = line.toolchain;
    let statement = provenance::statement(provenance::Facts {
        subjects,
        materials: provenance::materials(
            line.project,
            line.pins,
            line.redis,
            verify::DEFAULT_POLICY,
        )?,
        redis: &line.redis.version,
        sandbox: &opts.sandbox.to_string(),
        allowed_cves: info.security.allowed_cves.clone(),
        internal: serde_json::json!({
            "flags": line.flags,
            "target": &toolchain.pin.target,
            "cpu": &toolchain.pin.cpu,
            "opt": &toolchain.pin.opt,
        }),
        zig: &toolchain.identity,
        buildinfo: (
            format!("{name}.buildinfo.json"),
            treehash::sha256_bytes(&beside),
        ),
    });
    write_if_changed(
        &opts.out.join(format!("{name}.intoto.json")),
        &json_bytes(&statement)?,
    )?;
    write_sha256sums(&opts.out)?;
    let sig = opts.out.join(signature::SIG);
    match &opts.sign {
        Some(key) => {
            signature::sign(&opts.out, key, &line.project.scratch())?;
            eprintln!("  signed {} with {}", sig.display(), key.display());
        }
        None if sig.exists() && !signature::matches(&opts.out.join(signature::SUMS), &sig) => {
            fs::remove_file(&sig)?;
            eprintln!(
                "  removed {}: it signed an earlier SHA256SUMS (dist --sign KEY signs this one)",
                sig.display()
            );
        }
        None => {}
    }
    Ok(())
}

/// The release line's CVEs (`vendor/advisories.toml`, as `cargo xtask
/// audit` shows them): refuse an open high, critical or unrated one that
/// `--allow-cve` does not name.
fn audit_release(
    project: &Project,
    pins: &Pins,
    redis_pin: &SourcePin,
    series: &Series,
    openssl_series: &Series,
    opts: &DistOptions,
) -> Result<audit::LineAudit> {
    let advisories = Advisories::load(&project.root)?;
    let mut line = audit::line(&advisories, pins, redis_pin, series, openssl_series)?;
    advisories::allow(&mut line.findings, &opts.allow_cve)?;
    let blocking = line.blocking();
    if !blocking.is_empty() {
        let ids: Vec<String> = blocking
            .iter()
            .map(|f| {
                format!(
                    "{} ({} {}, {})",
                    f.id,
                    f.component,
                    f.version,
                    f.severity.as_str()
                )
            })
            .collect();
        bail!(
            "open high or critical CVEs, nothing was built: {}; fix them (a newer pin, a patch, or a reviewed not-affected statement in {}), or name each with --allow-cve CVE to release anyway (recorded in BUILDINFO.json and the SBOM). `cargo xtask audit` shows the table.",
            ids.join(", "),
            advisories::ADVISORIES_FILE
        );
    }
    let count = |l: &str| {
        line.findings
            .iter()
            .filter(|f| f.state.label() == l)
            .count()
    };
    eprintln!(
        "  audit: {} known CVEs: {} patched, {} fixed upstream, {} not affected, {} open (none high or critical{})",
        line.findings.len(),
        count("patched"),
        count("fixed upstream"),
        count("not affected"),
        count("OPEN"),
        if opts.allow_cve.is_empty() {
            String::new()
        } else {
            format!(" but the allowed {}", opts.allow_cve.join(", "))
        }
    );
    Ok(line)
}

/// What RELEASE.md says: the pins, every applied patch with its subject
/// and CVEs, the checks.
fn release_facts<'a>(
    line: &Line<'a>,
    name: &'a str,
    report: &'a verify::VerifyReport,
    smoke: &'a smoke::SmokeReport,
) -> layout::ReleaseFacts<'a> {
    let (project, pins, redis_pin, audit) = (line.project, line.pins, line.redis, line.audit);
    let (series, openssl_series, toolchain) = (line.series, line.openssl_series, line.toolchain);
    let sources = [&pins.openssl, redis_pin]
        .iter()
        .map(|p| layout::SourceNote {
            name: p.name.clone(),
            version: p.version.clone(),
            tree: p.tree.to_string(),
            queue: p.security.as_ref().map(|q| q.debian.clone()),
        })
        .collect();
    let mut patches = Vec::new();
    for (pin, series) in [(&pins.openssl, openssl_series), (redis_pin, series)] {
        let cves = audit.cves_by_patch(&pin.name);
        for (origin, p) in with_origin(project, series) {
            patches.push(layout::PatchNote {
                component: pin.name.clone(),
                origin,
                name: p.name.clone(),
                subject: layout::subject(&p.text),
                cves: cves.get(&p.name).cloned().unwrap_or_default(),
            });
        }
    }
    layout::ReleaseFacts {
        name,
        sources,
        zig: &toolchain.version,
        target: &toolchain.pin.target,
        patches,
        allowed_cves: audit.allowed_cves(),
        verify: report,
        smoke,
    }
}

fn build_info(
    line: &Line,
    name: &str,
    openssl: &BuiltOpenssl,
    built: &BuiltRedis,
    policy: &verify::Policy,
    outputs: Vec<OutputInfo>,
    debug: Vec<OutputInfo>,
) -> BuildInfo {
    let (project, pins, redis_pin, audit) = (line.project, line.pins, line.redis, line.audit);
    let (series, openssl_series) = (line.series, line.openssl_series);
    let (toolchain, flags) = (line.toolchain, line.flags);
    BuildInfo {
        schema: BUILDINFO_SCHEMA,
        schema_version: 3,
        release: name.to_string(),
        source_date_epoch: flags.source_date_epoch,
        sources: [&pins.openssl, redis_pin]
            .iter()
            .map(|p| SourceInfo {
                name: p.name.clone(),
                version: p.version.clone(),
                tree: p.tree.to_string(),
                released: p.released.clone(),
            })
            .collect(),
        patches: [(&pins.openssl, openssl_series), (redis_pin, series)]
            .into_iter()
            .flat_map(|(pin, series)| patch_infos(project, &pin.name, series, audit))
            .collect(),
        security: SecurityInfo {
            advisories_sha256: audit.advisories_sha256.clone(),
            queues: [(&pins.openssl, openssl_series), (redis_pin, series)]
                .into_iter()
                .filter_map(|(pin, _)| {
                    pin.security.as_ref().map(|q| QueueInfo {
                        component: pin.name.clone(),
                        debian: q.debian.clone(),
                        archive: q.archive.clone(),
                        sha256: q.sha256.clone(),
                    })
                })
                .collect(),
            allowed_cves: audit.allowed_cves(),
            open_cves: audit
                .findings
                .iter()
                .filter(|f| f.state == advisories::State::Open)
                .map(|f| f.id.clone())
                .collect(),
        },
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
        sandbox: flags.sandbox,
        build_keys: BuildKeys {
            openssl: openssl.key.clone(),
            redis: built.key.clone(),
        },
        verify_policy: PolicyInfo {
            name: policy.name.clone(),
            sha256: policy.sha256.clone(),
        },
        outputs,
        debug,
    }
}

/// The VEX: every finding of the release's audit.
fn vulnerabilities(audit: &audit::LineAudit) -> Vec<sbom::Vulnerability> {
    audit.findings.iter().map(sbom::vulnerability).collect()
}

/// Every patch applied to `component` with where it comes from and the CVEs
/// the audit says it fixes.
fn patch_infos(
    project: &Project,
    component: &str,
    series: &Series,
    audit: &audit::LineAudit,
) -> Vec<PatchInfo> {
    let cves = audit.cves_by_patch(component);
    with_origin(project, series)
        .into_iter()
        .map(|(series, p)| PatchInfo {
            component: component.to_string(),
            series,
            name: p.name.clone(),
            sha256: p.sha256.clone(),
            cves: cves.get(&p.name).cloned().unwrap_or_default(),
            left_out: p.left_out.clone(),
        })
        .collect()
}

/// A series' patches in the order applied, each with where it comes from:
/// our series folder (`patches/redis/7.0`) or the queue's archive.
fn with_origin<'a>(project: &Project, series: &'a Series) -> Vec<(String, &'a Patch)> {
    let own = rel(&project.root, &series.dir);
    let mut out: Vec<(String, &Patch)> = series.patches.iter().map(|p| (own.clone(), p)).collect();
    if let Some(q) = &series.security {
        out.extend(q.patches.iter().map(|p| (q.archive.clone(), p)));
    }
    out
}

/// The SBOM patches of a series: ours as they are in the repository, the
/// queue's as members of its archive; a patch that fixes CVEs is a backport
/// that resolves them.
fn sbom_patches(
    project: &Project,
    component: &str,
    series: &Series,
    audit: &audit::LineAudit,
) -> Vec<sbom::PatchRef> {
    let cves = audit.cves_by_patch(component);
    let mut out = Vec::new();
    for p in &series.patches {
        out.push((rel(&project.root, &series.dir.join(&p.name)), p));
    }
    if let Some(q) = &series.security {
        for p in &q.patches {
            out.push((q.reference(&p.name), p));
        }
    }
    out.into_iter()
        .map(|(url, p)| sbom::PatchRef {
            url,
            text: p.text.clone(),
            resolves: cves.get(&p.name).cloned().unwrap_or_default(),
        })
        .collect()
}

/// The SBOM's components: OpenSSL and Redis (with their patches) and what
/// Redis bundles.
fn sbom_sources(line: &Line, built: &BuiltRedis) -> Result<Vec<sbom::SourceComponent>> {
    let (project, pins, redis_pin, audit) = (line.project, line.pins, line.redis, line.audit);
    let (series, openssl_series) = (line.series, line.openssl_series);
    let component = |pin: &SourcePin, purl: String| sbom::SourceComponent {
        name: pin.name.clone(),
        version: pin.version.clone(),
        license: pin.license.clone(),
        tree: pin.tree.to_string(),
        purl: Some(purl),
        note: None,
        patches: Vec::new(),
        bundled: Vec::new(),
    };
    let mut openssl = component(
        &pins.openssl,
        format!(
            "pkg:github/openssl/openssl@openssl-{}",
            pins.openssl.version
        ),
    );
    openssl.patches = sbom_patches(project, &pins.openssl.name, openssl_series, audit);
    let mut redis = component(
        redis_pin,
        format!("pkg:github/redis/redis@{}", redis_pin.version),
    );
    redis.patches = sbom_patches(project, &redis_pin.name, series, audit);
    redis.bundled = built
        .components()?
        .into_iter()
        .map(|c| sbom::SourceComponent {
            name: c.name,
            version: c.version,
            license: c.license,
            tree: c.tree,
            purl: None,
            note: c.note,
            patches: Vec::new(),
            bundled: Vec::new(),
        })
        .collect();
    Ok(vec![openssl, redis])
}

/// Where the debug archive keeps a binary's unstripped copy: gdb's
/// `.build-id/xx/yyyy.debug` below `/usr/lib/debug`.
fn debug_path(build_id: &str) -> String {
    let (head, tail) = build_id.split_at(2.min(build_id.len()));
    format!(".build-id/{head}/{tail}.debug")
}

/// Compress `tree` into `dest` unless `dest` already holds exactly these bytes.
/// gzip output is a function of the tar stream, the encoder and its level, so
/// a gzip made before from the same three (kept under their hash) is reused.
fn write_tar_gz(
    project: &Project,
    tree: &TarTree,
    mtime: u64,
    level: Level,
    dest: &Path,
) -> Result<String> {
    let tar = tree.tar_bytes(mtime)?;
    let tar_sha = treehash::sha256_bytes(&tar);
    let cached = project
        .state
        .join("packages")
        .join(format!("{tar_sha}-{}.tar.gz", level.id()));
    let gz = match fs::read(&cached) {
        Ok(gz) => gz,
        Err(_) => {
            let gz = crate::tarball::gzip(&tar, level)?;
            fsutil::write_atomic(&cached, &gz)?;
            gz
        }
    };
    let sha = treehash::sha256_bytes(&gz);
    if fs::read(dest)
        .map(|b| treehash::sha256_bytes(&b))
        .ok()
        .as_deref()
        != Some(sha.as_str())
    {
        fsutil::write_atomic(dest, &gz)?;
    }
    Ok(sha)
}

fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() != Some(bytes) {
        fsutil::write_atomic(path, bytes)?;
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
    toolchain: &Toolchain,
    redis: &BuiltRedis,
    openssl: &BuiltOpenssl,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for dir in [redis.dir.join("licenses"), openssl.dir.join("licenses")] {
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
/// The release files of a folder `dist` writes (`portable-redis-*`), sorted.
pub fn release_files(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("portable-redis-"))
        .collect();
    names.sort();
    Ok(names)
}

pub fn write_sha256sums(dir: &Path) -> Result<()> {
    let mut text = String::new();
    for n in release_files(dir)? {
        text.push_str(&format!("{}  {n}\n", treehash::sha256_file(&dir.join(&n))?));
    }
    write_if_changed(&dir.join("SHA256SUMS"), text.as_bytes())
}

/// A release with the defaults (sandboxed, no smoke test, into `dist/`),
/// unpacked into `<state>/scratch/<purpose>`: the packaged programs, for a
/// command that runs them (`test-upstream`, `host check`).
pub fn packaged(
    project: &Project,
    redis: Option<&str>,
    vendor: &VendorOptions,
    purpose: &str,
) -> Result<(Release, PathBuf)> {
    let release = run(
        project,
        &DistOptions::new(project, redis.map(String::from), vendor.clone()),
    )?;
    let bin = unpack(project, &release, purpose)?;
    Ok((release, bin))
}

/// The release's `bin/`, unpacked from its tarball into
/// `<state>/scratch/<purpose>`.
pub fn unpack(project: &Project, release: &Release, purpose: &str) -> Result<PathBuf> {
    let dest = project.scratch().join(purpose);
    let staging = crate::fsutil::Staging::beside(&dest)?;
    archive::unpack(&release.tarball, staging.path())?;
    staging.commit(&dest)?;
    Ok(dest.join(&release.name).join("bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256sums_lists_the_release_files_sorted_and_only_them() {
        let d = tempfile::tempdir().unwrap();
        let files = [
            ("portable-redis-8.0.6-x86_64-linux-glibc2.11.tar.gz", "b"),
            ("portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz", "a"),
            ("portable-redis-7.0.15-x86_64-linux-glibc2.11.cdx.json", "c"),
            ("notes.txt", "not a release file"),
        ];
        for (n, body) in files {
            fs::write(d.path().join(n), body).unwrap();
        }
        fs::create_dir(d.path().join("portable-redis-folder")).unwrap();
        write_sha256sums(d.path()).unwrap();
        let sums = fs::read_to_string(d.path().join("SHA256SUMS")).unwrap();
        // sha256("c"), sha256("a"), sha256("b"), in name order.
        assert_eq!(
            sums,
            "2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6  \
             portable-redis-7.0.15-x86_64-linux-glibc2.11.cdx.json\n\
             ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  \
             portable-redis-7.0.15-x86_64-linux-glibc2.11.tar.gz\n\
             3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  \
             portable-redis-8.0.6-x86_64-linux-glibc2.11.tar.gz\n"
        );
        // A second run over the same files leaves the file as it is.
        let before = fs::metadata(d.path().join("SHA256SUMS"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        write_sha256sums(d.path()).unwrap();
        let after = fs::metadata(d.path().join("SHA256SUMS"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn licences_come_from_both_builds_and_zig_and_none_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let tree = |dir: &str, files: &[&str]| {
            for f in files {
                let p = d.path().join(dir).join("licenses").join(f);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, f.as_bytes()).unwrap();
            }
            d.path().join(dir)
        };
        let redis = BuiltRedis {
            key: "r".into(),
            dir: tree("redis", &["redis/COPYING", "redis/deps/lua/COPYRIGHT"]),
            bin: d.path().join("redis/bin"),
            cached: false,
        };
        let openssl = BuiltOpenssl {
            key: "o".into(),
            dir: tree("openssl", &["openssl/LICENSE.txt"]),
            prefix: d.path().join("openssl/prefix"),
            cached: false,
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pins = Pins::load(&root).unwrap();
        let zig = d.path().join("zig");
        fs::create_dir_all(&zig).unwrap();
        fs::write(zig.join("LICENSE"), "MIT").unwrap();
        let toolchain = Toolchain {
            dir: zig,
            version: "0.17.1".into(),
            identity: "wheel".into(),
            pin: pins.toolchain.clone(),
        };
        let names: Vec<String> = licenses(&toolchain, &redis, &openssl)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "redis/COPYING",
                "redis/deps/lua/COPYRIGHT",
                "openssl/LICENSE.txt",
                "zig-0.17.1/LICENSE"
            ]
        );
        let empty = BuiltRedis {
            dir: d.path().join("nothing"),
            ..redis
        };
        let no_openssl = BuiltOpenssl {
            dir: d.path().join("nothing"),
            ..openssl
        };
        let bare = Toolchain {
            dir: d.path().join("nothing"),
            ..toolchain
        };
        let e = licenses(&bare, &empty, &no_openssl)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no licence files"), "{e}");
    }

    /// Ours first, from the series folder; then the queue's, named by its
    /// archive; each with the CVEs the audit says it fixes.
    #[test]
    fn patches_are_recorded_with_their_origin_and_the_cves_they_fix() {
        use crate::advisories::{Finding, Severity, State};
        use crate::patch::{parse, Queue};
        let body = "--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n";
        let root = PathBuf::from("/repo");
        let project = Project::new(root.clone(), root.join("target/portable"));
        let series = Series {
            dir: root.join("patches/redis/7.0"),
            patches: vec![parse("0001-memcpy.patch", body).unwrap()],
            security: Some(Queue {
                archive: "redis_7.0.15-1~deb12u10.debian.tar.xz".into(),
                debian: "5:7.0.15-1~deb12u10".into(),
                folder: "debian/patches".into(),
                patches: vec![Patch {
                    left_out: vec!["tests/unit/x.tcl".into()],
                    ..parse("CVE-2025-1.patch", body).unwrap()
                }],
            }),
        };
        let finding = |id: &str, component: &str, state: State| Finding {
            id: id.into(),
            component: component.into(),
            version: "7.0.15".into(),
            severity: Severity::High,
            score: None,
            summary: String::new(),
            url: String::new(),
            published: None,
            ratings: Vec::new(),
            state,
            allowed: false,
        };
        let patched = |p: &str| State::Patched {
            patches: vec![p.into()],
        };
        let audit = audit::LineAudit {
            advisories_sha256: String::new(),
            redis: "7.0.15".into(),
            openssl: "3.5.7".into(),
            components: Vec::new(),
            findings: vec![
                finding("CVE-2025-1", "redis", patched("CVE-2025-1.patch")),
                finding("CVE-2025-2", "redis", patched("CVE-2025-1.patch")),
                // Another component's patch of the same name is not this one's.
                finding("CVE-2025-3", "openssl", patched("0001-memcpy.patch")),
                finding("CVE-2025-4", "redis", State::Open),
            ],
        };
        let infos = patch_infos(&project, "redis", &series, &audit);
        let got: Vec<(&str, &str, Vec<String>, Vec<String>)> = infos
            .iter()
            .map(|p| {
                (
                    p.series.as_str(),
                    p.name.as_str(),
                    p.cves.clone(),
                    p.left_out.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("patches/redis/7.0", "0001-memcpy.patch", vec![], vec![]),
                (
                    "redis_7.0.15-1~deb12u10.debian.tar.xz",
                    "CVE-2025-1.patch",
                    vec!["CVE-2025-1".to_string(), "CVE-2025-2".to_string()],
                    vec!["tests/unit/x.tcl".to_string()]
                ),
            ]
        );
        assert!(infos
            .iter()
            .all(|p| p.component == "redis" && p.sha256.len() == 64));
        let refs = sbom_patches(&project, "redis", &series, &audit);
        let got: Vec<(&str, Vec<String>)> = refs
            .iter()
            .map(|r| (r.url.as_str(), r.resolves.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("patches/redis/7.0/0001-memcpy.patch", vec![]),
                (
                    "redis_7.0.15-1~deb12u10.debian.tar.xz#debian/patches/CVE-2025-1.patch",
                    vec!["CVE-2025-1".to_string(), "CVE-2025-2".to_string()]
                ),
            ]
        );
        assert!(refs.iter().all(|r| r.text == body));
    }

    #[test]
    fn the_debug_archive_is_laid_out_as_gdb_looks_for_build_ids() {
        assert_eq!(
            debug_path("4ad3f2c1e0b9a8877665544332211aabbccddeef"),
            ".build-id/4a/d3f2c1e0b9a8877665544332211aabbccddeef.debug"
        );
    }

    #[test]
    fn the_release_name_carries_the_version_and_the_glibc_floor() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let pins = Pins::load(&root).unwrap();
        let toolchain = Toolchain {
            dir: PathBuf::from("/zig"),
            version: "0.17.1".into(),
            identity: "wheel".into(),
            pin: pins.toolchain.clone(),
        };
        let mut redis = pins.redis[0].clone();
        redis.version = "7.0.15".into();
        assert_eq!(
            release_name(&redis, &toolchain),
            "portable-redis-7.0.15-x86_64-linux-glibc2.11"
        );
    }
}
