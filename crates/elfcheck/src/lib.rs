//! elfcheck: prove from the ELF files themselves that executables load on a
//! target's oldest supported system, symbol by symbol: glibc versions per
//! library, the libraries needed, no shared OpenSSL, no loader feature the
//! baseline lacks, and hardening.
//!
//! Its inputs are ELF files, a policy, zig's glibc ABI list
//! (`lib/libc/glibc/abilists`) and, optionally, copies of real hosts'
//! library folders and linker maps ([`Extras`]). It knows nothing of a
//! command line: `Policy::load(path)`, `GlibcAbi::load(abilists, &policy)`,
//! then `check(paths, &policy, &abi, &extras)` gives the report. The rules are
//! in `rules/` and README.md ("verify"), their ids in [`Rule`]; the JSON
//! layout in docs/verify-report.schema.json.

pub mod abilists;
pub mod elf;
pub mod hosts;
pub mod linkmap;
pub mod policy;
pub mod report;
pub mod rule;
mod rules;
pub mod version;

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};

pub use self::{
    abilists::GlibcAbi,
    policy::Policy,
    report::{
        FileReport, Hardening, HostResult, VerifyReport, Violation, SCHEMA_ID, SCHEMA_VERSION,
    },
    rule::Rule,
    rules::openssl_texts,
    version::{GlibcVersion, KernelVersion},
};
use self::{elf::ElfKind, hosts::Host, linkmap::LinkMap};

/// What a check may use besides the binaries, the policy and the ABI.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Copies of real hosts' library folders (`--against`).
    pub hosts: Vec<PathBuf>,
    /// Linker maps; besides these, `<file>.map` and `../maps/<name>.map`
    /// next to each binary are used when present.
    pub maps: Vec<PathBuf>,
}

/// Check each path against `policy` (symlinks are followed: they are
/// checked as their target). Per-file problems go into the report; an
/// unusable host folder or map is an error.
pub fn check(
    paths: &[PathBuf],
    policy: &Policy,
    abi: &GlibcAbi,
    extras: &Extras,
) -> Result<VerifyReport> {
    let mut hosts = extras
        .hosts
        .iter()
        .map(|h| Host::open(h))
        .collect::<Result<Vec<_>>>()?;
    // `--map` files by the binary name they belong to ("" = the only binary).
    let mut given: HashMap<String, PathBuf> = HashMap::new();
    for m in &extras.maps {
        let key = if extras.maps.len() == 1 && paths.len() == 1 {
            String::new()
        } else {
            let Some(stem) = m.file_stem() else {
                bail!("linker map {}: not a file name", m.display());
            };
            stem.to_string_lossy().into_owned()
        };
        given.insert(key, m.clone());
    }
    let mut loaded: HashMap<PathBuf, LinkMap> = HashMap::new();

    let mut report = VerifyReport {
        schema: SCHEMA_ID,
        schema_version: SCHEMA_VERSION,
        policy: policy.clone(),
        reference: abi.source.clone(),
        files: Vec::new(),
        hosts: Vec::new(),
    };
    for path in paths {
        let map = match find_map(path, &given) {
            Some(m) => {
                if !loaded.contains_key(&m) {
                    loaded.insert(m.clone(), LinkMap::load(&m)?);
                }
                loaded.get_key_value(&m)
            }
            None => None,
        };
        let (file, host_results) = verify_file(path, policy, abi, &mut hosts, map);
        report.files.push(file);
        report.hosts.extend(host_results);
    }
    Ok(report)
}

/// The map for `binary`: a `--map` of the same name, else `<binary>.map` or
/// `../maps/<name>.map` beside it (symlinks name their target's map).
fn find_map(binary: &Path, given: &HashMap<String, PathBuf>) -> Option<PathBuf> {
    if let Some(m) = given.get("") {
        return Some(m.clone());
    }
    let real = fs::canonicalize(binary).unwrap_or_else(|_| binary.to_path_buf());
    let name = real.file_name()?.to_string_lossy().into_owned();
    if let Some(m) = given.get(&name) {
        return Some(m.clone());
    }
    let dir = real.parent().unwrap_or(Path::new("."));
    [
        dir.join(format!("{name}.map")),
        dir.join("../maps").join(format!("{name}.map")),
    ]
    .into_iter()
    .find(|c| c.is_file())
}

fn verify_file(
    path: &Path,
    policy: &Policy,
    abi: &GlibcAbi,
    hosts: &mut [Host],
    map: Option<(&PathBuf, &LinkMap)>,
) -> (FileReport, Vec<HostResult>) {
    let name = path.display().to_string();
    let mut report = FileReport::new(name.clone());
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("cannot read: {e}"));
            return (report, Vec::new());
        }
    };
    report.sha256 = Some(hex::encode(Sha256::digest(&data)));
    let facts = match elf::read(&data) {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(format!("{e:#}; only ELF executables can be verified"));
            return (report, Vec::new());
        }
    };
    report.kind = Some(format!("{:?}", facts.kind));
    if !matches!(facts.kind, ElfKind::Executable | ElfKind::Pie) {
        report.error = Some(format!(
            "an ELF {:?}, not an executable; only executables can be verified",
            facts.kind
        ));
        return (report, Vec::new());
    }
    let arch = policy.target.split('-').next().unwrap_or("");
    if facts.machine != arch {
        report.error = Some(format!(
            "a program for {}, and the policy {} is for {}: check it against its own target's policy",
            facts.machine, policy.name, policy.target
        ));
        return (report, Vec::new());
    }
    report.interpreter = facts.interpreter.clone();
    report.needed = facts.needed.clone();
    report.max_glibc = max_glibc_per_library(&facts);
    report.imports = facts.imports.len();

    let findings = rules::check(&facts, &data, policy, abi);
    report.hardening = Some(findings.hardening);
    report.weak_unversioned = findings.weak_unversioned;
    report.openssl = findings.openssl;
    let mut violations = findings.violations;
    let mut host_results = Vec::new();
    for host in hosts.iter_mut() {
        let (result, errors) = host.check(&name, &facts);
        host_results.push(result);
        violations.extend(errors);
    }
    if let Some((map_path, map)) = map {
        report.map = Some(map_path.display().to_string());
        violations.extend(rules::runtime_shadow(map, abi));
        for v in &mut violations {
            if let Some(sym) = &v.symbol {
                v.objects = map.referenced_by(sym).to_vec();
            }
        }
    }
    for v in &mut violations {
        v.binary = name.clone();
    }
    report.violations = violations;
    (report, host_results)
}

fn max_glibc_per_library(facts: &elf::ElfFacts) -> Vec<(String, String)> {
    let mut out: Vec<(String, GlibcVersion)> = Vec::new();
    for need in &facts.version_needs {
        let Some(v) = GlibcVersion::from_symbol_version(&need.version) else {
            continue;
        };
        match out.iter_mut().find(|(l, _)| *l == need.library) {
            Some((_, cur)) => *cur = (*cur).max(v),
            None => out.push((need.library.clone(), v)),
        }
    }
    out.into_iter()
        .map(|(l, v)| (l, v.symbol_version()))
        .collect()
}
