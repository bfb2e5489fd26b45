//! elfcheck: prove from the ELF files themselves that executables load on a
//! target's oldest supported system, symbol by symbol: glibc versions per
//! library, the libraries needed, no shared OpenSSL, no loader feature the
//! baseline lacks, and hardening.
//!
//! Its inputs are ELF files, a policy, zig's glibc ABI list
//! (`lib/libc/glibc/abilists`) and, optionally, copies of real hosts'
//! library folders and linker maps. It knows nothing of a command line: the
//! caller turns its arguments into [`Options`]. The rules are in `rules.rs`
//! and README.md ("verify"); the JSON layout in docs/verify-report.schema.json.

pub mod abilists;
pub mod elf;
pub mod hosts;
pub mod linkmap;
pub mod report;
pub mod rules;

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use self::report::{
    FileReport, Hardening, HostResult, VerifyReport, Violation, SCHEMA_ID, SCHEMA_VERSION,
};
use self::{abilists::GlibcAbi, elf::ElfKind, hosts::Host, linkmap::LinkMap};

/// The libraries a binary may need: glibc's own, nothing else.
pub const ALLOWED_NEEDED: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
];

/// What a binary is checked against.
#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    /// Highest glibc version the binaries may need, e.g. `2.11`.
    pub glibc: String,
    /// zig target whose glibc ABI is the reference.
    pub target: String,
    pub interpreter: String,
    /// Newest kernel the ABI-tag note may ask for: what glibc 2.11-era
    /// distributions run (SLES 11 SP1 and later, RHEL/CentOS 6).
    pub kernel: String,
    /// The OpenSSL version that must be linked in (`None`: not checked).
    pub openssl: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            glibc: "2.11".into(),
            target: "x86_64-linux-gnu".into(),
            interpreter: "/lib64/ld-linux-x86-64.so.2".into(),
            kernel: "2.6.32".into(),
            openssl: None,
        }
    }
}

/// Everything one verify run needs.
#[derive(Debug, Clone)]
pub struct Options {
    pub policy: Policy,
    /// zig's `lib/libc/glibc/abilists` (`Toolchain::abilists`).
    pub abilists: PathBuf,
    /// `--against` host folders.
    pub hosts: Vec<PathBuf>,
    /// `--map` files; besides these, `<file>.map` and `../maps/<name>.map`
    /// next to each binary are used when present.
    pub maps: Vec<PathBuf>,
}

impl Options {
    pub fn new(policy: Policy, abilists: PathBuf) -> Options {
        Options {
            policy,
            abilists,
            hosts: Vec::new(),
            maps: Vec::new(),
        }
    }
}

/// Compare dotted versions numerically (`2.3.4` < `2.11`).
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(u32::MAX))
            .collect::<Vec<_>>()
    };
    parse(a).cmp(&parse(b))
}

/// Verify each path (symlinks are followed: they are checked as their
/// target). Per-file problems go into the report; an unusable reference,
/// host folder or map is an error.
pub fn verify_paths(paths: &[PathBuf], opts: &Options) -> Result<VerifyReport> {
    let abi = GlibcAbi::load(&opts.abilists, &opts.policy.target, &opts.policy.glibc)?;
    let mut hosts = opts
        .hosts
        .iter()
        .map(|h| Host::open(h))
        .collect::<Result<Vec<_>>>()?;
    // `--map` files by the binary name they belong to ("" = the only binary).
    let mut given: HashMap<String, PathBuf> = HashMap::new();
    for m in &opts.maps {
        let key = if opts.maps.len() == 1 && paths.len() == 1 {
            String::new()
        } else {
            let Some(stem) = m.file_stem() else {
                bail!("--map {}: not a file name", m.display());
            };
            stem.to_string_lossy().into_owned()
        };
        given.insert(key, m.clone());
    }
    let mut loaded: HashMap<PathBuf, LinkMap> = HashMap::new();

    let mut report = VerifyReport {
        schema: SCHEMA_ID,
        schema_version: SCHEMA_VERSION,
        policy: opts.policy.clone(),
        reference: opts.abilists.display().to_string(),
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
        let (file, host_results) = verify_file(path, opts, &abi, &mut hosts, map);
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
    opts: &Options,
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
    report.interpreter = facts.interpreter.clone();
    report.needed = facts.needed.clone();
    report.max_glibc = max_glibc_per_library(&facts);
    report.imports = facts.imports.len();

    let findings = rules::check(&facts, &data, &opts.policy, abi);
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
    let mut out: Vec<(String, String)> = Vec::new();
    for need in &facts.version_needs {
        let Some(v) = need.version.strip_prefix("GLIBC_") else {
            continue;
        };
        if v.starts_with(|c: char| c.is_ascii_digit()) {
            match out.iter_mut().find(|(l, _)| *l == need.library) {
                Some((_, cur)) => {
                    if compare_versions(v, cur.trim_start_matches("GLIBC_")).is_gt() {
                        *cur = need.version.clone();
                    }
                }
                None => out.push((need.library.clone(), need.version.clone())),
            }
        }
    }
    out
}
