//! The verify report: one entry per binary, one line per broken rule, a host
//! table for `--against`; printed as a compact table or as JSON
//! (`docs/verify-report.schema.json`, versioned by `schema_version`).

use std::{fmt::Write as _, path::Path};

use serde::Serialize;

use crate::{policy::Policy, rule::Rule, version::GlibcVersion};

pub const SCHEMA_ID: &str = "portable-redis/verify-report";
/// Bump on any change to the JSON layout (and update the schema file).
pub const SCHEMA_VERSION: u32 = 4;

/// One broken rule. `binary`, `rule` and `message` are always set; `library`,
/// `symbol` and `version` whenever the rule is about one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub binary: String,
    pub rule: Rule,
    pub library: Option<String>,
    pub symbol: Option<String>,
    pub version: Option<String>,
    /// The `--against` host folder, for `target-host` findings.
    pub host: Option<String>,
    /// Objects or archive members that refer to the symbol (from the linker map).
    pub objects: Vec<String>,
    pub message: String,
}

impl Violation {
    pub fn new(rule: Rule, message: impl Into<String>) -> Violation {
        Violation {
            binary: String::new(),
            rule,
            library: None,
            symbol: None,
            version: None,
            host: None,
            objects: Vec::new(),
            message: message.into(),
        }
    }
    pub fn library(mut self, library: impl Into<String>) -> Violation {
        self.library = Some(library.into());
        self
    }
    pub fn symbol(mut self, symbol: impl Into<String>) -> Violation {
        self.symbol = Some(symbol.into());
        self
    }
    pub fn version(mut self, version: impl Into<String>) -> Violation {
        self.version = Some(version.into());
        self
    }
    pub fn opt_library(mut self, library: Option<&str>) -> Violation {
        self.library = library.map(str::to_string);
        self
    }
    pub fn opt_version(mut self, version: Option<&str>) -> Violation {
        self.version = version.map(str::to_string);
        self
    }
}

/// The hardening facts of one binary (each one is also a rule).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Hardening {
    pub pie: bool,
    /// `full` (PT_GNU_RELRO and BIND_NOW), `partial` or `none`.
    pub relro: &'static str,
    pub nx_stack: bool,
    pub textrel: bool,
    /// `__stack_chk_fail` is imported.
    pub stack_protector: bool,
    /// The fortified `__*_chk` functions the binary imports.
    pub fortify: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub sha256: Option<String>,
    /// Set when the file could not be checked at all (exit code 2).
    pub error: Option<String>,
    pub kind: Option<String>,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// Highest `GLIBC_*` version needed, per library.
    pub max_glibc: Vec<(String, String)>,
    /// Undefined dynamic symbols (each checked against the glibc ABI).
    pub imports: usize,
    /// Weak unversioned undefined symbols: they resolve to nothing without harm.
    pub weak_unversioned: Vec<String>,
    /// The OpenSSL version texts found inside the binary.
    pub openssl: Vec<String>,
    pub hardening: Option<Hardening>,
    /// The linker map used to name the objects behind symbols.
    pub map: Option<String>,
    pub violations: Vec<Violation>,
}

impl FileReport {
    pub fn new(path: String) -> FileReport {
        FileReport {
            path,
            sha256: None,
            error: None,
            kind: None,
            interpreter: None,
            needed: Vec::new(),
            max_glibc: Vec::new(),
            imports: 0,
            weak_unversioned: Vec::new(),
            openssl: Vec::new(),
            hardening: None,
            map: None,
            violations: Vec::new(),
        }
    }

    pub fn passed(&self) -> bool {
        self.error.is_none() && self.violations.is_empty()
    }

    /// The highest GLIBC version over all libraries.
    pub fn highest_glibc(&self) -> Option<&str> {
        self.max_glibc
            .iter()
            .map(|(_, v)| v.as_str())
            .max_by_key(|v| GlibcVersion::from_symbol_version(v))
    }
}

/// One binary on one `--against` host.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub binary: String,
    pub host: String,
    pub passed: bool,
    /// The first things missing: `symbol@version`, `version (library)` or a library.
    pub missing: Vec<String>,
    /// What the loader would print, one line per failure.
    pub loader_errors: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub schema: &'static str,
    pub schema_version: u32,
    pub policy: Policy,
    /// The glibc ABI reference (zig's abilists file).
    pub reference: String,
    pub files: Vec<FileReport>,
    pub hosts: Vec<HostResult>,
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

    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.files.iter().flat_map(|f| f.violations.iter())
    }

    /// Write paths below `dir` as `label/…` everywhere in the report (a
    /// release's report names `bin/redis-server`, not a build folder).
    pub fn relabel(&mut self, dir: &Path, label: &str) {
        let prefix = format!("{}/", dir.display());
        let to = format!("{label}/");
        let fix = |s: &mut String| {
            if s.contains(&prefix) {
                *s = s.replace(&prefix, &to);
            }
        };
        fix(&mut self.reference);
        for f in &mut self.files {
            fix(&mut f.path);
            if let Some(m) = &mut f.map {
                fix(m);
            }
            for v in &mut f.violations {
                fix(&mut v.binary);
                fix(&mut v.message);
            }
        }
        for h in &mut self.hosts {
            fix(&mut h.binary);
            h.loader_errors.iter_mut().for_each(fix);
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A compact table, the host table, then one line per violation.
    pub fn human(&self) -> String {
        let mut s = String::new();
        let width = self
            .files
            .iter()
            .map(|f| f.path.chars().count())
            .max()
            .unwrap_or(0)
            .clamp(6, 48);
        self.file_table(&mut s, width);
        self.host_table(&mut s, width);
        self.findings(&mut s);
        s
    }

    /// One row per file: result, highest GLIBC version, hardening, OpenSSL,
    /// needed libraries.
    fn file_table(&self, s: &mut String, width: usize) {
        let _ = writeln!(
            s,
            "{:<width$}  {:<6} {:<11} {:>7}  {:<3} {:<7} {:<3} {:<3} {:<7} {:<8} needed",
            "binary",
            "result",
            "max GLIBC",
            "imports",
            "PIE",
            "RELRO",
            "NX",
            "SSP",
            "FORTIFY",
            "OpenSSL"
        );
        for f in &self.files {
            let result = if f.error.is_some() {
                "ERROR"
            } else if f.passed() {
                "pass"
            } else {
                "FAIL"
            };
            let yes = |b: bool| if b { "yes" } else { "NO" };
            // Both are read from imports, and a static binary imports nothing.
            let unseen = self.policy.is_static() && f.imports == 0;
            let (pie, relro, nx, ssp, fortify) = match &f.hardening {
                Some(h) => (
                    yes(h.pie),
                    h.relro,
                    yes(h.nx_stack && !h.textrel),
                    if unseen { "-" } else { yes(h.stack_protector) },
                    if unseen {
                        "-".to_string()
                    } else {
                        h.fortify.len().to_string()
                    },
                ),
                None => ("-", "-", "-", "-", "-".to_string()),
            };
            let openssl = match f.openssl.as_slice() {
                [] => "-".to_string(),
                [one] => one.clone(),
                more => more.join(","),
            };
            let needed: Vec<&str> = f
                .needed
                .iter()
                .map(|n| n.split(".so").next().unwrap_or(n))
                .collect();
            let _ = writeln!(
                s,
                "{:<width$}  {:<6} {:<11} {:>7}  {:<3} {:<7} {:<3} {:<3} {:<7} {:<8} {}",
                short(&f.path, width),
                result,
                f.highest_glibc().unwrap_or("-"),
                f.imports,
                pie,
                relro,
                nx,
                ssp,
                fortify,
                openssl,
                needed.join(" ")
            );
        }
    }

    /// One row per file and host: could that host's loader run it.
    fn host_table(&self, s: &mut String, width: usize) {
        if !self.hosts.is_empty() {
            let hw = self
                .hosts
                .iter()
                .map(|h| h.host.chars().count())
                .max()
                .unwrap_or(0)
                .max(4);
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{:<width$}  {:<hw$}  {:<6} first missing",
                "binary", "host", "result"
            );
            for h in &self.hosts {
                let _ = writeln!(
                    s,
                    "{:<width$}  {:<hw$}  {:<6} {}",
                    short(&h.binary, width),
                    h.host,
                    if h.passed { "pass" } else { "FAIL" },
                    h.missing.join(", ")
                );
            }
        }
    }

    /// The weak unversioned references, then every error and violation.
    fn findings(&self, s: &mut String) {
        for f in self.files.iter().filter(|f| !f.weak_unversioned.is_empty()) {
            let _ = writeln!(
                s,
                "{}: weak unversioned references (harmless when unresolved): {}",
                f.path,
                f.weak_unversioned.join(", ")
            );
        }
        let mut first = true;
        for f in &self.files {
            if f.error.is_none() && f.violations.is_empty() {
                continue;
            }
            if first {
                let _ = writeln!(s);
                first = false;
            }
            if let Some(e) = &f.error {
                let _ = writeln!(s, "{}: {e}", f.path);
            }
            for v in &f.violations {
                match &v.host {
                    Some(h) => write!(s, "{}: [{} {h}] {}", f.path, v.rule, v.message),
                    None => write!(s, "{}: [{}] {}", f.path, v.rule, v.message),
                }
                .ok();
                if !v.objects.is_empty() {
                    let _ = write!(s, " (referenced by {})", v.objects.join(", "));
                }
                let _ = writeln!(s);
            }
        }
    }
}

fn short(path: &str, width: usize) -> String {
    let n = path.chars().count();
    if n <= width {
        path.to_string()
    } else {
        let tail: String = path.chars().skip(n + 1 - width).collect();
        format!("…{tail}")
    }
}
