//! What a release records about itself: BUILDINFO.json, the SBOM's
//! components and patches, RELEASE.md's facts and the tree's host files.

use std::{fs, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{publish::rel, stages::Line};
use crate::{
    advisories, audit,
    build::{self, BuildFlags, BuiltOpenssl, BuiltRedis},
    layout,
    patch::{Patch, Series},
    pins::SourcePin,
    project::Project,
    sandbox::SandboxKind,
    sbom, smoke, verify,
};

pub const BUILDINFO_SCHEMA: &str = "portable-redis/buildinfo";

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputInfo {
    pub path: String,
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_id: Option<String>,
}

/// The release archives' hashes, added to the BUILDINFO copy beside them.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ReleaseBuildInfo<'a> {
    #[serde(flatten)]
    pub(super) info: &'a BuildInfo,
    pub(super) archives: Vec<OutputInfo>,
}

/// The release tree's files for hosts and people (`layout.rs`): Redis's
/// configuration files as the build kept them, the service files and
/// install.sh, README and RELEASE.md.
pub(super) fn host_files(
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
    let glibc = policy.glibc.map(|g| g.to_string());
    files.push(layout::readme(&layout::ReadmeFacts {
        redis: &line.redis.version,
        runs_on: &line.toolchain.target.runs_on,
        openssl: &line.pins.openssl.version,
        glibc: glibc.as_deref(),
        kernel: &policy.kernel.to_string(),
        hosts: line.toolchain.target.hosts.as_deref(),
    }));
    files.push(layout::release_notes(&release_facts(
        line, name, report, smoke,
    ))?);
    Ok(files)
}

/// What RELEASE.md says: the pins, every applied patch with its subject
/// and CVEs, the checks.
pub(super) fn release_facts<'a>(
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
        target: &toolchain.target.zig,
        patches,
        allowed_cves: audit.allowed_cves(),
        verify: report,
        smoke,
    }
}

pub(super) fn build_info(
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
            target: toolchain.target.zig.clone(),
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
pub(super) fn vulnerabilities(audit: &audit::LineAudit) -> Vec<sbom::Vulnerability> {
    audit.findings.iter().map(sbom::vulnerability).collect()
}

/// Every patch applied to `component` with where it comes from and the CVEs
/// the audit says it fixes.
pub(super) fn patch_infos(
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
pub(super) fn with_origin<'a>(project: &Project, series: &'a Series) -> Vec<(String, &'a Patch)> {
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
pub(super) fn sbom_patches(
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
pub(super) fn sbom_sources(line: &Line, built: &BuiltRedis) -> Result<Vec<sbom::SourceComponent>> {
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
    let mut sources = vec![openssl, redis];
    // A static target's programs carry zig's copy of musl (no version of its
    // own is recorded there: it is the one zig ships).
    let toolchain = line.toolchain;
    if toolchain.target.libc() == "musl" {
        sources.push(sbom::SourceComponent {
            name: "musl".into(),
            version: format!("zig-{}", toolchain.version),
            license: "MIT".into(),
            tree: crate::treehash::tree_hash(&toolchain.musl_dir())
                .with_context(|| {
                    format!(
                        "hashing zig's musl sources in {} for the SBOM: a zig without its lib/ folder beside it cannot build the static target",
                        toolchain.musl_dir().display()
                    )
                })?
                .to_string(),
            purl: None,
            note: Some(format!(
                "the C library linked into every program: zig {}'s lib/libc/musl",
                toolchain.version
            )),
            patches: Vec::new(),
            bundled: Vec::new(),
        });
    }
    Ok(sources)
}

/// Where the debug archive keeps a binary's unstripped copy: gdb's
/// `.build-id/xx/yyyy.debug` below `/usr/lib/debug`.
pub(super) fn debug_path(build_id: &str) -> String {
    let (head, tail) = build_id.split_at(2.min(build_id.len()));
    format!(".build-id/{head}/{tail}.debug")
}
