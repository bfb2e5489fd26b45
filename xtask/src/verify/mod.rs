//! Stage 5, verify: prove from the ELF files themselves that each binary loads
//! on the glibc baseline and carries no shared OpenSSL.
//!
//! `cargo xtask verify [--json] FILE...` exits 0 when every file passes, 1 on
//! violations and 2 when an input is unusable (missing, not an ELF executable).

pub mod elf;

use std::{
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use anyhow::Result;
use serde::Serialize;

use self::elf::{ElfFacts, ElfKind};

pub const SCHEMA_ID: &str = "portable-redis/verify-report";
pub const SCHEMA_VERSION: u32 = 1;

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
    /// Highest glibc symbol version allowed, e.g. `2.11`.
    pub glibc: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            glibc: "2.11".into(),
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub library: Option<String>,
    pub symbol: Option<String>,
    pub version: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub sha256: Option<String>,
    /// Set when the file could not be checked at all (exit code 2).
    pub error: Option<String>,
    pub kind: Option<String>,
    pub needed: Vec<String>,
    /// Highest `GLIBC_*` version needed, per library.
    pub max_glibc: Vec<(String, String)>,
    pub violations: Vec<Violation>,
}

impl FileReport {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.violations.is_empty()
    }

    /// The highest GLIBC version over all libraries.
    pub fn highest_glibc(&self) -> Option<&str> {
        self.max_glibc
            .iter()
            .map(|(_, v)| v.as_str())
            .max_by(|a, b| {
                compare_versions(
                    a.trim_start_matches("GLIBC_"),
                    b.trim_start_matches("GLIBC_"),
                )
            })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: &'static str,
    pub schema_version: u32,
    pub policy: Policy,
    pub files: Vec<FileReport>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.files.iter().all(FileReport::passed)
    }

    pub fn unusable(&self) -> bool {
        self.files.iter().any(|f| f.error.is_some())
    }

    /// 0 pass, 1 violations, 2 unusable input.
    pub fn exit_code(&self) -> i32 {
        if self.unusable() {
            2
        } else if self.passed() {
            0
        } else {
            1
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A compact table, then one line per violation.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<40} {:<8} {:<13} {}",
            "file", "result", "max GLIBC", "needed"
        );
        for f in &self.files {
            let result = if f.error.is_some() {
                "ERROR"
            } else if f.passed() {
                "pass"
            } else {
                "FAIL"
            };
            let _ = writeln!(
                s,
                "{:<40} {:<8} {:<13} {}",
                short(&f.path),
                result,
                f.highest_glibc().unwrap_or("-"),
                f.needed.join(" ")
            );
        }
        for f in &self.files {
            if let Some(e) = &f.error {
                let _ = writeln!(s, "{}: {e}", f.path);
            }
            for v in &f.violations {
                let _ = writeln!(s, "{}: [{}] {}", f.path, v.rule, v.message);
            }
        }
        s
    }
}

fn short(path: &str) -> String {
    if path.len() <= 40 {
        path.to_string()
    } else {
        format!("…{}", &path[path.len() - 39..])
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

/// Verify each path (symlinks are followed: they are checked as their target).
pub fn verify_paths(paths: &[PathBuf], policy: &Policy) -> VerifyReport {
    let files = paths.iter().map(|p| verify_file(p, policy)).collect();
    VerifyReport {
        schema: SCHEMA_ID,
        schema_version: SCHEMA_VERSION,
        policy: policy.clone(),
        files,
    }
}

fn verify_file(path: &Path, policy: &Policy) -> FileReport {
    let mut report = FileReport {
        path: path.display().to_string(),
        sha256: None,
        error: None,
        kind: None,
        needed: Vec::new(),
        max_glibc: Vec::new(),
        violations: Vec::new(),
    };
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("cannot read: {e}"));
            return report;
        }
    };
    report.sha256 = Some(crate::treehash::sha256_bytes(&data));
    let facts = match elf::read(&data) {
        Ok(f) => f,
        Err(e) => {
            report.error = Some(format!("{e:#}; only ELF executables can be verified"));
            return report;
        }
    };
    report.kind = Some(format!("{:?}", facts.kind));
    if !matches!(facts.kind, ElfKind::Executable | ElfKind::Pie) {
        report.error = Some(format!(
            "an ELF {:?}, not an executable; only executables can be verified",
            facts.kind
        ));
        return report;
    }
    report.needed = facts.needed.clone();
    report.max_glibc = max_glibc_per_library(&facts);
    report.violations = check(&facts, policy);
    report
}

fn max_glibc_per_library(facts: &ElfFacts) -> Vec<(String, String)> {
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

/// The rules. Each violation names the rule, library, symbol and version.
pub fn check(facts: &ElfFacts, policy: &Policy) -> Vec<Violation> {
    let mut v = Vec::new();

    // glibc-version: every GLIBC_x.y needed, per library, is within the baseline.
    for need in &facts.version_needs {
        if let Some(ver) = need.version.strip_prefix("GLIBC_") {
            if ver.starts_with(|c: char| c.is_ascii_digit())
                && compare_versions(ver, &policy.glibc).is_gt()
            {
                let symbols: Vec<&str> = facts
                    .imports
                    .iter()
                    .filter(|i| {
                        i.version.as_deref() == Some(need.version.as_str())
                            && i.library.as_deref() == Some(need.library.as_str())
                    })
                    .map(|i| i.name.as_str())
                    .collect();
                for sym in if symbols.is_empty() {
                    vec![""]
                } else {
                    symbols
                } {
                    v.push(Violation {
                        rule: "glibc-version",
                        library: Some(need.library.clone()),
                        symbol: (!sym.is_empty()).then(|| sym.to_string()),
                        version: Some(need.version.clone()),
                        message: format!(
                            "{}{}@{} from {} is newer than GLIBC_{}",
                            sym,
                            if sym.is_empty() { "version " } else { "" },
                            need.version,
                            need.library,
                            policy.glibc
                        ),
                    });
                }
            }
        }
    }

    // needed-libraries: only glibc's own libraries.
    for lib in &facts.needed {
        if !ALLOWED_NEEDED.contains(&lib.as_str()) {
            let openssl = lib.starts_with("libssl") || lib.starts_with("libcrypto");
            v.push(Violation {
                rule: if openssl {
                    "static-openssl"
                } else {
                    "needed-libraries"
                },
                library: Some(lib.clone()),
                symbol: None,
                version: None,
                message: if openssl {
                    format!(
                        "needs the shared OpenSSL library {lib}; OpenSSL must be linked statically"
                    )
                } else {
                    format!(
                        "needs {lib}, which is not one of {}",
                        ALLOWED_NEEDED.join(", ")
                    )
                },
            });
        }
    }

    // static-openssl: no OPENSSL_* version needs.
    for need in &facts.version_needs {
        if need.version.starts_with("OPENSSL_") {
            let syms: Vec<&str> = facts
                .imports
                .iter()
                .filter(|i| i.version.as_deref() == Some(need.version.as_str()))
                .map(|i| i.name.as_str())
                .take(5)
                .collect();
            v.push(Violation {
                rule: "static-openssl",
                library: Some(need.library.clone()),
                symbol: syms.first().map(|s| s.to_string()),
                version: Some(need.version.clone()),
                message: format!(
                    "needs {} from {} ({})",
                    need.version,
                    need.library,
                    syms.join(", ")
                ),
            });
        }
    }

    // memcpy-pin: memcpy bound to GLIBC_2.2.5.
    for imp in facts.imports.iter().filter(|i| i.name == "memcpy") {
        if imp.version.as_deref() != Some("GLIBC_2.2.5") {
            v.push(Violation {
                rule: "memcpy-pin",
                library: imp.library.clone(),
                symbol: Some("memcpy".into()),
                version: imp.version.clone(),
                message: format!(
                    "memcpy@{} from {}; it must be bound to GLIBC_2.2.5",
                    imp.version.as_deref().unwrap_or("(unversioned)"),
                    imp.library.as_deref().unwrap_or("?")
                ),
            });
        }
    }
    v
}

/// `cargo xtask verify`.
pub fn run(files: &[PathBuf], json: bool, policy: &Policy) -> Result<i32> {
    let report = verify_paths(files, policy);
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    Ok(report.exit_code())
}
