//! `cargo xtask verify-release DIR [--key PUB]`: a downstream's re-check of
//! a release folder it received, against the pins of this checkout.
//!
//! 1. sums: every file of `SHA256SUMS` is in DIR with that SHA-256, and
//!    every release file in DIR is listed;
//! 2. signature: `SHA256SUMS.sig` signs `SHA256SUMS` with the key in PUB
//!    (`ssh-keygen -Y verify`; without `--key` the signature is not checked);
//! 3. provenance: each `*.intoto.json` names archives in DIR by their hash,
//!    every archive has one, and its materials are this checkout's pins,
//!    patches, policy and advisories;
//! 4. verify: each release archive's `share/doc/VERIFY.json` passed under
//!    the checkout's policy for the archive's target (by its file name), its
//!    BUILDINFO lists every member with its hash,
//!    and the checker, run again on the archive's programs, passes them.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    build, fsutil, pins::Pins, project::Project, provenance, signature, toolchain, treehash, verify,
};

pub const SCHEMA: &str = "portable-redis/verify-release";

/// One finding of a check: what it looked at and what it saw.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `sums`, `signature`, `provenance` or `verify`.
    pub check: &'static str,
    /// The file it is about.
    pub subject: String,
    pub passed: bool,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub dir: String,
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Report {
    pub fn human(&self) -> String {
        let mut s = format!("verify-release: {}\n", self.dir);
        for c in &self.checks {
            s.push_str(&format!(
                "  {:<10} {:<6} {}: {}\n",
                c.check,
                if c.passed { "ok" } else { "FAILED" },
                c.subject,
                c.message
            ));
        }
        s.push_str(if self.passed {
            "verify-release: passed\n"
        } else {
            "verify-release: FAILED: do not install this release\n"
        });
        s
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn pass(&mut self, check: &'static str, subject: &str, message: impl Into<String>) {
        self.0.push(Check {
            check,
            subject: subject.to_string(),
            passed: true,
            message: message.into(),
        });
    }

    fn fail(&mut self, check: &'static str, subject: &str, message: impl Into<String>) {
        self.0.push(Check {
            check,
            subject: subject.to_string(),
            passed: false,
            message: message.into(),
        });
    }
}

pub fn run(project: &Project, dir: &Path, key: Option<&Path>) -> Result<Report> {
    if !dir.join(signature::SUMS).is_file() {
        bail!(
            "{} has no {}: name the folder `cargo xtask dist` wrote (dist/ by default)",
            dir.display(),
            signature::SUMS
        );
    }
    let mut checks = Checks(Vec::new());
    let files = crate::dist::release_files(dir)?;
    let sums = sums(dir, &files, &mut checks)?;
    match key {
        Some(key) => {
            let scratch = project.scratch().join("verify-release");
            match signature::verify(
                &dir.join(signature::SUMS),
                &dir.join(signature::SIG),
                key,
                &scratch,
            ) {
                Ok(said) => checks.pass("signature", signature::SIG, said),
                Err(e) => checks.fail("signature", signature::SIG, format!("{e:#}")),
            }
        }
        None => checks.pass(
            "signature",
            signature::SIG,
            if dir.join(signature::SIG).exists() {
                "not checked: pass --key with the publisher's public key"
            } else {
                "the release is not signed (no SHA256SUMS.sig); pass --key to require a signature"
            },
        ),
    }
    let pins = project.pins()?;
    provenance_checks(project, pins, dir, &files, &sums, &mut checks)?;
    let archives: Vec<&String> = files
        .iter()
        .filter(|f| f.ends_with(".tar.gz") && !f.ends_with("-debug.tar.gz"))
        .collect();
    if !archives.is_empty() {
        // zig's glibc ABI list, the checker's reference (the pinned wheel,
        // downloaded once into the state folder).
        let abilists =
            toolchain::provision(project, &pins.toolchain, pins.target(None)?, None)?.abilists();
        for archive in archives {
            verify_archive(project, pins, &abilists, &dir.join(archive), &mut checks)?;
        }
    }
    let passed = checks.0.iter().all(|c| c.passed);
    Ok(Report {
        schema: SCHEMA,
        schema_version: 1,
        dir: dir.display().to_string(),
        checks: checks.0,
        passed,
    })
}

/// SHA256SUMS against the folder: the files whose hashes match.
fn sums(dir: &Path, files: &[String], checks: &mut Checks) -> Result<BTreeMap<String, String>> {
    let path = dir.join(signature::SUMS);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut listed = BTreeMap::new();
    let mut good = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let Some((hash, name)) = line.split_once("  ") else {
            checks.fail(
                "sums",
                signature::SUMS,
                format!("line {} is not `<sha256>  <file>`: {line:?}", n + 1),
            );
            continue;
        };
        listed.insert(name.to_string(), hash.to_string());
        let file = dir.join(name);
        if name.contains('/') || !file.is_file() {
            checks.fail(
                "sums",
                name,
                "listed in SHA256SUMS but not in the folder: download it too",
            );
            continue;
        }
        let actual = treehash::sha256_file(&file)?;
        if actual == hash {
            good.insert(name.to_string(), actual);
        } else {
            checks.fail(
                "sums",
                name,
                format!(
                    "SHA256SUMS says {hash}, the file is {actual}: the file changed after \
                     SHA256SUMS was written, or SHA256SUMS is another release's"
                ),
            );
        }
    }
    for f in files.iter().filter(|f| !listed.contains_key(*f)) {
        checks.fail(
            "sums",
            f,
            "not listed in SHA256SUMS: nothing vouches for it",
        );
    }
    if good.len() == listed.len() && files.iter().all(|f| listed.contains_key(f)) {
        checks.pass(
            "sums",
            signature::SUMS,
            format!("all {} files match", good.len()),
        );
    }
    Ok(good)
}

fn provenance_checks(
    project: &Project,
    pins: &Pins,
    dir: &Path,
    files: &[String],
    sums: &BTreeMap<String, String>,
    checks: &mut Checks,
) -> Result<()> {
    let mut covered = Vec::new();
    for name in files.iter().filter(|f| f.ends_with(".intoto.json")) {
        let statement = match provenance::load(&dir.join(name)) {
            Ok(s) => s,
            Err(e) => {
                checks.fail("provenance", name, format!("{e:#}"));
                continue;
            }
        };
        let mut ok = true;
        for s in &statement.subject {
            covered.push(s.name.clone());
            let want = s.sha256().unwrap_or_default();
            match sums.get(&s.name) {
                Some(actual) if actual == want => {}
                Some(actual) => {
                    ok = false;
                    checks.fail(
                        "provenance",
                        name,
                        format!(
                            "its subject {} has sha256 {want}, the file {actual}",
                            s.name
                        ),
                    );
                }
                None => {
                    ok = false;
                    checks.fail(
                        "provenance",
                        name,
                        format!("its subject {} is not a checked file of the folder", s.name),
                    );
                }
            }
        }
        let params = &statement.predicate.build_definition.external_parameters;
        let materials = match pins.redis(Some(&params.redis)) {
            Ok(pin) => match pins.target_of_release(name) {
                Ok(target) => provenance::materials(project, pins, pin, target)?,
                Err(e) => {
                    checks.fail("provenance", name, format!("{e:#}"));
                    continue;
                }
            },
            Err(e) => {
                checks.fail(
                    "provenance",
                    name,
                    format!(
                        "built from Redis {}, which this checkout does not pin: {e:#}",
                        params.redis
                    ),
                );
                continue;
            }
        };
        let recorded = &statement.predicate.build_definition.resolved_dependencies;
        let differences = provenance::differences(recorded, &materials);
        if !differences.is_empty() {
            ok = false;
            checks.fail(
                "provenance",
                name,
                format!(
                    "its inputs are not this checkout's (check out the commit the release was built from): {}",
                    differences.join("; ")
                ),
            );
        }
        if ok {
            checks.pass(
                "provenance",
                name,
                format!(
                    "{} archives by hash, all {} inputs are this checkout's (Redis {}, sandbox {})",
                    statement.subject.len(),
                    recorded.len(),
                    params.redis,
                    params.sandbox
                ),
            );
        }
    }
    for archive in files.iter().filter(|f| f.ends_with(".tar.gz")) {
        if !covered.contains(archive) {
            checks.fail(
                "provenance",
                archive,
                "no *.intoto.json names it: its origin is unknown",
            );
        }
    }
    Ok(())
}

/// BUILDINFO lists every member but itself, with its hash.
fn buildinfo_problems(
    name: &str,
    members: &BTreeMap<String, Vec<u8>>,
    info: &serde_json::Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let outputs: BTreeMap<String, String> = info["outputs"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|o| {
                    Some((
                        o["path"].as_str()?.to_string(),
                        o["sha256"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for (path, bytes) in members {
        let Some(rel) = path.strip_prefix(&format!("{name}/")) else {
            problems.push(format!("{path} is outside the release's folder"));
            continue;
        };
        if rel == "BUILDINFO.json" {
            continue;
        }
        match outputs.get(rel) {
            Some(h) if *h == treehash::sha256_bytes(bytes) => {}
            Some(_) => problems.push(format!("{rel} differs from its hash in BUILDINFO.json")),
            None => problems.push(format!("{rel} is not in BUILDINFO.json")),
        }
    }
    problems
}

/// The recorded verify report passed, under `policy`.
fn report_problems(report: &serde_json::Value, policy: &verify::Policy) -> Vec<String> {
    let mut problems = Vec::new();
    if report["policy"]["sha256"].as_str() != Some(policy.sha256.as_str()) {
        problems.push(format!(
            "VERIFY.json was made under policy {} sha256 {}, the checkout's {} is {}",
            report["policy"]["name"].as_str().unwrap_or("?"),
            report["policy"]["sha256"].as_str().unwrap_or("?"),
            policy.name,
            policy.sha256
        ));
    }
    for f in report["files"].as_array().into_iter().flatten() {
        let failed =
            !f["error"].is_null() || f["violations"].as_array().is_some_and(|v| !v.is_empty());
        if failed {
            problems.push(format!(
                "VERIFY.json records a failure of {}",
                f["path"].as_str().unwrap_or("?")
            ));
        }
    }
    problems
}

/// The checker run again on the archive's programs (`member` reads one).
fn check_again<'m>(
    project: &Project,
    abilists: &Path,
    policy: &verify::Policy,
    member: impl Fn(&str) -> Option<&'m Vec<u8>>,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let scratch = fsutil::Staging::beside(&project.scratch().join("verify-release-bin"))?;
    let mut programs: Vec<PathBuf> = Vec::new();
    for p in build::PROGRAMS {
        match member(&format!("bin/{p}")) {
            Some(bytes) => {
                let path = scratch.path().join(p);
                fs::write(&path, bytes)?;
                programs.push(path);
            }
            None => problems.push(format!("bin/{p} is missing from the archive")),
        }
    }
    let abi = verify::GlibcAbi::load(abilists, policy)?;
    let again = verify::check(&programs, policy, &abi, &verify::Extras::default())?;
    for f in &again.files {
        let program = f.path.rsplit('/').next().unwrap_or(&f.path);
        if let Some(e) = &f.error {
            problems.push(format!("checked again, {program} cannot be read: {e}"));
        }
        for v in &f.violations {
            problems.push(format!(
                "checked again, {program}: {} ({})",
                v.message, v.rule
            ));
        }
    }
    Ok(problems)
}

/// The archive's own records and a fresh check of its programs.
fn verify_archive(
    project: &Project,
    pins: &Pins,
    abilists: &Path,
    archive: &Path,
    checks: &mut Checks,
) -> Result<()> {
    let name = archive
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_string())
        .unwrap_or_default();
    let subject = format!("{name}.tar.gz");
    let members = match crate::archive::read_files(archive, |_| true) {
        Ok(m) => m,
        Err(e) => {
            checks.fail(
                "verify",
                &subject,
                format!("cannot read the archive: {e:#}"),
            );
            return Ok(());
        }
    };
    let member = |p: &str| members.get(&format!("{name}/{p}"));
    let json = |p: &str| -> Result<serde_json::Value, String> {
        let bytes = member(p).ok_or_else(|| format!("{p} is missing from the archive"))?;
        serde_json::from_slice(bytes).map_err(|e| format!("{p} is not JSON: {e}"))
    };
    let (report, info) = match (json("share/doc/VERIFY.json"), json("BUILDINFO.json")) {
        (Ok(r), Ok(i)) => (r, i),
        (Err(e), _) | (_, Err(e)) => {
            checks.fail("verify", &subject, e);
            return Ok(());
        }
    };
    let mut problems = buildinfo_problems(&name, &members, &info);
    // The recorded report passed, under the checkout's policy for its target.
    let target = match pins.target_of_release(&subject) {
        Ok(t) => t,
        Err(e) => {
            checks.fail("verify", &subject, format!("{e:#}"));
            return Ok(());
        }
    };
    let mut policy = verify::target_policy(project, target)?;
    problems.extend(report_problems(&report, &policy));
    let files = report["files"].as_array().map_or(0, Vec::len);
    // The checker again, on the archive's programs.
    policy.openssl = Some(pins.openssl.version.clone());
    problems.extend(check_again(project, abilists, &policy, |p| member(p))?);
    if problems.is_empty() {
        checks.pass(
            "verify",
            &subject,
            format!(
                "VERIFY.json passed under {} ({} programs), BUILDINFO.json matches all {} members, \
                 and the programs pass the checker again",
                policy.name,
                files,
                members.len() - 1
            ),
        );
    } else {
        checks.fail("verify", &subject, problems.join("; "));
    }
    Ok(())
}
