//! The stages of `dist::run`, each one call with a typed input and output:
//! the audit gate, build, strip, verify, smoke and package. Nothing is
//! written to the release folder before verify and smoke have passed.

use std::{fs, os::unix::fs::PermissionsExt, path::PathBuf};

use anyhow::{bail, Context, Result};

use super::{
    publish::{self, json_bytes},
    records::{self, OutputInfo},
    release_name, DistOptions, Release,
};
use crate::{
    advisories::{self, Advisories},
    audit,
    build::{self, BuildFlags, BuiltOpenssl, BuiltRedis},
    emulator,
    fsutil::Staging,
    patch::Series,
    pins::{Pins, SourcePin},
    project::Project,
    sbom,
    session::BuildSession,
    smoke, strip,
    tarball::{Level, TarTree},
    toolchain::Toolchain,
    treehash, verify,
};

/// What a release line is built from: the pins, both series, the audit and
/// the toolchain (every record of the release reads from it).
pub(super) struct Line<'a> {
    pub(super) project: &'a Project,
    pub(super) pins: &'a Pins,
    pub(super) redis: &'a SourcePin,
    pub(super) series: &'a Series,
    pub(super) openssl_series: &'a Series,
    pub(super) audit: &'a audit::LineAudit,
    pub(super) toolchain: &'a Toolchain,
    pub(super) flags: &'a BuildFlags,
}

impl<'a> Line<'a> {
    /// The opened build and the audit that let it through.
    pub(super) fn new(session: &'a BuildSession<'a>, audit: &'a audit::LineAudit) -> Line<'a> {
        Line {
            project: session.project,
            pins: session.pins,
            redis: &session.redis,
            series: &session.series,
            openssl_series: &session.openssl_series,
            audit,
            toolchain: &session.toolchain,
            flags: &session.flags,
        }
    }
}

/// The release line's CVEs (`vendor/advisories.toml`, as `cargo xtask
/// audit` shows them): refuse an open high, critical or unrated one that
/// `--allow-cve` does not name.
pub(super) fn audit_gate(session: &BuildSession, opts: &DistOptions) -> Result<audit::LineAudit> {
    let advisories = Advisories::load(&session.project.root)?;
    let mut line = audit::line(
        &advisories,
        session.pins,
        &session.redis,
        &session.series,
        &session.openssl_series,
    )?;
    advisories::allow(&mut line.findings, &opts.allow_cve)?;
    let blocking = line.blocking();
    if !blocking.is_empty() {
        bail!("{}", refusal(&blocking));
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

/// Why `dist` refuses a line with open high or critical CVEs, and what to do.
pub(super) fn refusal(blocking: &[&advisories::Finding]) -> String {
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
    format!(
        "open high or critical CVEs, nothing was built: {}; fix them (a newer pin, a patch, or a \
         reviewed not-affected statement in {}), or name each with --allow-cve CVE to release \
         anyway (recorded in BUILDINFO.json and the SBOM). `cargo xtask audit` shows the table.",
        ids.join(", "),
        advisories::ADVISORIES_FILE
    )
}

/// A line's build: OpenSSL, Redis and the unstripped programs.
pub(super) struct Built {
    pub(super) openssl: BuiltOpenssl,
    pub(super) redis: BuiltRedis,
    /// Each program's name and unstripped bytes.
    pub(super) programs: Vec<(String, Vec<u8>)>,
}

/// OpenSSL and Redis, each cached by its inputs (vendor and patch run only
/// on a miss); the functions not-affected statements say are absent are
/// checked absent from the unstripped programs.
pub(super) fn build(session: &BuildSession, audit: &audit::LineAudit) -> Result<Built> {
    let (openssl, redis) = session.build(&session.series)?;
    let programs = build::PROGRAMS
        .iter()
        .map(|p| Ok((p.to_string(), fs::read(redis.bin.join(p))?)))
        .collect::<Result<Vec<_>>>()?;
    let absent = advisories::check_absent(&audit.findings, &programs)?;
    eprintln!(
        "  audit: none of the {absent} functions that not-affected statements say are absent is in the binaries"
    );
    Ok(Built {
        openssl,
        redis,
        programs,
    })
}

/// A program as the release ships it, with its unstripped copy.
pub(super) struct Program {
    pub(super) name: String,
    pub(super) stripped: Vec<u8>,
    pub(super) unstripped: Vec<u8>,
    pub(super) build_id: String,
}

/// The stripped programs, also staged in a scratch `bin/` (the bytes verify
/// and smoke see are the bytes the archive holds).
pub(super) struct Stripped {
    pub(super) name: String,
    pub(super) openssl: BuiltOpenssl,
    pub(super) redis: BuiltRedis,
    pub(super) programs: Vec<Program>,
    pub(super) scratch: Staging,
    pub(super) bin: PathBuf,
}

pub(super) fn strip(line: &Line, built: Built) -> Result<Stripped> {
    let name = release_name(line.redis, &line.toolchain.target);
    let scratch = Staging::beside(&line.project.scratch().join(&name))?;
    let bin = scratch.path().join("bin");
    fs::create_dir_all(&bin)?;
    let mut programs = Vec::new();
    for (p, unstripped) in built.programs {
        let stripped = strip::strip(&unstripped).with_context(|| format!("stripping {p}"))?;
        let build_id = strip::build_id(&stripped)?
            .with_context(|| format!("{p} has no GNU build-id; the link must pass --build-id"))?;
        fs::write(bin.join(&p), &stripped)?;
        fs::set_permissions(bin.join(&p), fs::Permissions::from_mode(0o755))?;
        programs.push(Program {
            name: p,
            stripped,
            unstripped,
            build_id,
        });
    }
    Ok(Stripped {
        name,
        openssl: built.openssl,
        redis: built.redis,
        programs,
        scratch,
        bin,
    })
}

/// Stripped programs that passed the target policy.
pub(super) struct Verified {
    pub(super) stripped: Stripped,
    pub(super) policy: verify::Policy,
    pub(super) report: verify::VerifyReport,
}

/// The staged programs against the target's policy (`verify::target_policy`),
/// the link maps naming the objects; a failure refuses
/// the release.
pub(super) fn verify(line: &Line, stripped: Stripped) -> Result<Verified> {
    let (pins, toolchain, built) = (line.pins, line.toolchain, &stripped.redis);
    let programs: Vec<PathBuf> = build::PROGRAMS
        .iter()
        .map(|p| stripped.bin.join(p))
        .collect();
    let mut policy = verify::target_policy(line.project, &toolchain.target)?;
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
    report.relabel(&stripped.bin, "bin");
    report.relabel(&built.dir, "build");
    report.relabel(&toolchain.dir, &format!("zig-{}", toolchain.version));
    eprint!("{}", report.human());
    if !report.passed() {
        bail!("verify refused the release; nothing was packaged");
    }
    Ok(Verified {
        stripped,
        policy,
        report,
    })
}

/// Verified programs that answered as servers.
pub(super) struct Smoked {
    pub(super) verified: Verified,
    pub(super) smoke: smoke::SmokeReport,
}

/// The staged server over TCP and TLS: the bytes the archive will hold.
/// Started by `runner` (another architecture's programs run under the
/// target's emulator).
pub(super) fn smoke(runner: &emulator::Runner, verified: Verified) -> Result<Smoked> {
    let stripped = &verified.stripped;
    let smoke = smoke::smoke(
        runner,
        &stripped.bin,
        &stripped.scratch.path().join("smoke"),
    )
    .context("smoke test of the stripped binaries")?;
    eprintln!(
        "  smoke: Redis {} answered {} over TCP and {} over TLS{}",
        smoke.server_version,
        smoke.plain_ping,
        smoke.tls_ping,
        smoke
            .emulator
            .as_ref()
            .map(|e| format!(", under {e}"))
            .unwrap_or_default()
    );
    Ok(Smoked { verified, smoke })
}

/// The two archives' trees and the BUILDINFO they carry.
pub(super) struct Trees {
    pub(super) release: TarTree,
    pub(super) debug: TarTree,
    pub(super) info: records::BuildInfo,
    pub(super) bom: Vec<u8>,
}

/// The release tree (`<name>/bin`, LICENSES, share/doc's SBOM and verify
/// report, the host files, BUILDINFO.json) and the debug tree
/// (`.build-id/xx/yyyy.debug`).
pub(super) fn trees(line: &Line, smoked: &Smoked) -> Result<Trees> {
    let (verified, smoke) = (&smoked.verified, &smoked.smoke);
    let (stripped, report) = (&verified.stripped, &verified.report);
    let name = &stripped.name;
    let (mut release, mut debug) = (TarTree::new(), TarTree::new());
    let (mut outputs, debug_outputs) =
        add_programs(name, &stripped.programs, &mut release, &mut debug);
    let mut add = |path: String, bytes: Vec<u8>, executable: bool| {
        outputs.push(OutputInfo {
            path: path.clone(),
            sha256: treehash::sha256_bytes(&bytes),
            build_id: None,
        });
        release.file(&format!("{name}/{path}"), bytes, executable);
    };
    for (path, bytes) in publish::licenses(line.toolchain, &stripped.redis, &stripped.openssl)? {
        add(format!("LICENSES/{path}"), bytes, false);
    }
    let bom = sbom::bom(
        name,
        &line.redis.version,
        &line.toolchain.target.runs_on,
        line.flags.source_date_epoch,
        &records::sbom_sources(line, &stripped.redis)?,
        &records::vulnerabilities(line.audit),
    );
    let bom = json_bytes(&bom)?;
    add("share/doc/sbom.cdx.json".into(), bom.clone(), false);
    add(
        "share/doc/VERIFY.json".into(),
        format!("{}\n", report.to_json()).into_bytes(),
        false,
    );
    add(
        "share/doc/VERIFY.txt".into(),
        report.human().into_bytes(),
        false,
    );
    let host_files =
        records::host_files(line, name, &stripped.redis, &verified.policy, report, smoke)?;
    for f in host_files {
        add(f.path, f.bytes, f.executable);
    }
    outputs.sort_by(|a, b| a.path.cmp(&b.path));
    let info = records::build_info(
        line,
        name,
        &stripped.openssl,
        &stripped.redis,
        &verified.policy,
        outputs,
        debug_outputs,
    );
    release.file(&format!("{name}/BUILDINFO.json"), json_bytes(&info)?, false);
    Ok(Trees {
        release,
        debug,
        info,
        bom,
    })
}

/// The programs into the release tree (`<name>/bin/`, the aliases as links
/// to redis-server) and their unstripped copies into the debug tree
/// (`.build-id/xx/yyyy.debug`); their outputs and debug outputs for
/// BUILDINFO, in the programs' order.
pub(super) fn add_programs(
    name: &str,
    programs: &[Program],
    release: &mut TarTree,
    debug: &mut TarTree,
) -> (Vec<OutputInfo>, Vec<OutputInfo>) {
    let (mut outputs, mut debug_outputs) = (Vec::new(), Vec::new());
    for p in programs {
        let debug_path = records::debug_path(&p.build_id);
        debug_outputs.push(OutputInfo {
            path: debug_path.clone(),
            sha256: treehash::sha256_bytes(&p.unstripped),
            build_id: Some(p.build_id.clone()),
        });
        debug.file(&debug_path, p.unstripped.clone(), false);
        outputs.push(OutputInfo {
            path: format!("bin/{}", p.name),
            sha256: treehash::sha256_bytes(&p.stripped),
            build_id: Some(p.build_id.clone()),
        });
        release.file(&format!("{name}/bin/{}", p.name), p.stripped.clone(), true);
    }
    for alias in build::ALIASES {
        release.symlink(&format!("{name}/bin/{alias}"), "redis-server");
    }
    (outputs, debug_outputs)
}

/// The archives into the release folder (compressed at once, one per
/// thread), then what goes beside them (`publish`).
pub(super) fn package(line: &Line, smoked: Smoked, opts: &DistOptions) -> Result<Release> {
    let trees = trees(line, &smoked)?;
    let name = smoked.verified.stripped.name.clone();
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let tarball = opts.out.join(format!("{name}.tar.gz"));
    let debug_tarball = opts.out.join(format!("{name}-debug.tar.gz"));
    let (project, epoch) = (line.project, line.flags.source_date_epoch);
    let (sha256, debug_sha256) = std::thread::scope(|s| {
        let debug = s.spawn(|| {
            publish::write_tar_gz(project, &trees.debug, epoch, Level::Default, &debug_tarball)
        });
        let release = publish::write_tar_gz(project, &trees.release, epoch, Level::Best, &tarball);
        let debug = debug
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the debug archive's thread panicked")));
        Ok::<_, anyhow::Error>((release?, debug?))
    })?;
    let archives = vec![
        OutputInfo {
            path: publish::file_name(&tarball),
            sha256: sha256.clone(),
            build_id: None,
        },
        OutputInfo {
            path: publish::file_name(&debug_tarball),
            sha256: debug_sha256,
            build_id: None,
        },
    ];
    let outputs = publish::publish(line, opts, &name, &trees.info, archives, &trees.bom)?;
    eprintln!("  packaged {} (sha256 {sha256})", tarball.display());
    let Smoked { verified, smoke } = smoked;
    let Verified {
        stripped, report, ..
    } = verified;
    Ok(Release {
        name,
        tarball,
        debug_tarball,
        sha256,
        verify: report,
        smoke,
        built: stripped.redis,
        openssl: stripped.openssl,
        outputs,
        record: PathBuf::new(),
    })
}
