//! `cargo xtask audit [--redis LINE] [--json]`: every known CVE of each
//! release line's components (Redis, what it bundles, OpenSSL), and how the
//! pinned versions stand (`vendor/advisories.toml`). Exit 1 when one is open
//! and high, critical or unrated; `dist` makes the same check.

use std::{collections::BTreeMap, fmt};

use anyhow::Result;
use serde::Serialize;

use crate::{
    advisories::{self, Advisories, Component, Finding, State},
    build,
    patch::Series,
    pins::{Pins, SourcePin},
    project::Project,
    security,
    vendor::VendorOptions,
};

pub const SCHEMA: &str = "portable-redis/audit";
pub const SCHEMA_VERSION: u32 = 1;

/// One release line: a Redis pin with what it bundles and the OpenSSL pin.
#[derive(Debug, Clone, Serialize)]
pub struct LineAudit {
    /// SHA-256 of the advisories file the findings come from.
    pub advisories_sha256: String,
    pub redis: String,
    pub openssl: String,
    /// What is applied to each component: `name version (+ N patches)`.
    pub components: Vec<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub schema: &'static str,
    pub schema_version: u32,
    pub lines: Vec<LineAudit>,
    pub passed: bool,
}

impl LineAudit {
    /// The open CVEs `--allow-cve` let through, by id.
    pub fn allowed_cves(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.allowed)
            .map(|f| f.id.clone())
            .collect()
    }

    /// Patch name → the CVEs it fixes in `component`.
    pub fn cves_by_patch(&self, component: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.component == component) {
            if let State::Patched { patches } = &f.state {
                for p in patches {
                    out.entry(p.clone()).or_default().push(f.id.clone());
                }
            }
        }
        out
    }

    /// Open findings that stop a release.
    pub fn blocking(&self) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.blocks()).collect()
    }

    /// `24 patched, 3 fixed upstream, …` for one component.
    fn counts(&self, component: &str) -> String {
        let mut by: BTreeMap<&str, usize> = BTreeMap::new();
        for f in self.findings.iter().filter(|f| f.component == component) {
            *by.entry(f.state.label()).or_default() += 1;
        }
        if by.is_empty() {
            return "no known CVE".into();
        }
        ["patched", "fixed upstream", "not affected", "OPEN"]
            .iter()
            .filter_map(|l| by.get(l).map(|n| format!("{n} {}", l.to_lowercase())))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The components of the release line of `redis_pin`, as the audit sees them.
pub fn components(
    pins: &Pins,
    redis_pin: &SourcePin,
    redis_series: &Series,
    openssl_series: &Series,
) -> Vec<Component> {
    let from_series = |name: &str, version: &str, series: &Series, options: Vec<String>| {
        let applied = series.applied();
        Component {
            name: name.to_string(),
            version: version.to_string(),
            patches: applied.iter().map(|(p, _)| p.name.clone()).collect(),
            patch_cves: applied
                .iter()
                .filter(|(p, _)| !p.cves.is_empty())
                .map(|(p, _)| (p.name.clone(), p.cves.clone()))
                .collect(),
            build_options: options,
        }
    };
    let mut out = vec![from_series(
        &redis_pin.name,
        &redis_pin.version,
        redis_series,
        Vec::new(),
    )];
    out.extend(redis_pin.bundled.iter().map(|b| Component {
        name: b.name.clone(),
        version: b.version.clone(),
        patches: Vec::new(),
        patch_cves: BTreeMap::new(),
        build_options: Vec::new(),
    }));
    out.push(from_series(
        &pins.openssl.name,
        &pins.openssl.version,
        openssl_series,
        build::OPENSSL_OPTIONS.map(String::from).to_vec(),
    ));
    out
}

/// Audit one release line from its loaded series.
pub fn line(
    advisories: &Advisories,
    pins: &Pins,
    redis_pin: &SourcePin,
    redis_series: &Series,
    openssl_series: &Series,
) -> Result<LineAudit> {
    let components = components(pins, redis_pin, redis_series, openssl_series);
    let findings = advisories::evaluate(advisories, &components)?;
    let describe = |name: &str, version: &str, s: &Series| {
        let mut d = format!("{name} {version}");
        if !s.patches.is_empty() {
            d.push_str(&format!(" + {} patches", s.patches.len()));
        }
        if let Some(q) = &s.security {
            d.push_str(&format!(" + {} of Debian {}", q.patches.len(), q.debian));
        }
        d
    };
    let mut described = vec![describe(&redis_pin.name, &redis_pin.version, redis_series)];
    described.extend(
        redis_pin
            .bundled
            .iter()
            .map(|b| format!("{} {}", b.name, b.version)),
    );
    described.push(describe(
        &pins.openssl.name,
        &pins.openssl.version,
        openssl_series,
    ));
    Ok(LineAudit {
        advisories_sha256: advisories.sha256.clone(),
        redis: redis_pin.version.clone(),
        openssl: pins.openssl.version.clone(),
        components: described,
        findings,
    })
}

/// `cargo xtask audit`: every Redis line (or one), against the pins.
pub fn run(project: &Project, line_filter: Option<&str>, opts: &VendorOptions) -> Result<Audit> {
    let pins = project.pins()?;
    let advisories = Advisories::load(&project.root)?;
    let redis: Vec<&SourcePin> = match line_filter {
        Some(l) => vec![pins.redis(Some(l))?],
        None => pins.redis.iter().collect(),
    };
    let _lock = project.lock()?;
    let openssl_series = security::series(project, &pins.openssl, opts)?;
    let mut lines = Vec::new();
    for pin in redis {
        let series = security::series(project, pin, opts)?;
        lines.push(line(&advisories, pins, pin, &series, &openssl_series)?);
    }
    let passed = lines.iter().all(|l| l.blocking().is_empty());
    Ok(Audit {
        schema: SCHEMA,
        schema_version: SCHEMA_VERSION,
        lines,
        passed,
    })
}

impl fmt::Display for LineAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Redis {} line: {}",
            self.redis,
            self.components.join("; ")
        )?;
        let mut rows: Vec<&Finding> = self.findings.iter().collect();
        // Open first, then the most severe, then by id.
        rows.sort_by(|a, b| {
            (b.state == State::Open)
                .cmp(&(a.state == State::Open))
                .then(b.severity.cmp(&a.severity))
                .then(a.component.cmp(&b.component))
                .then(a.id.cmp(&b.id))
        });
        writeln!(
            f,
            "  {:<16} {:<9} {:<27} {:<15} by",
            "CVE", "component", "severity (highest rating)", "state"
        )?;
        for r in rows {
            let mut severity = match r.score {
                Some(s) => format!("{} {s:.1}", r.severity.as_str()),
                None => r.severity.as_str().to_string(),
            };
            // The vendor's own word, where the highest rating is another's.
            if let Some(vendor) = r.ratings.first().and_then(|v| v.severity) {
                if vendor != r.severity {
                    severity.push_str(&format!(" ({}: {})", r.ratings[0].source, vendor.as_str()));
                }
            }
            let state = if r.allowed {
                "OPEN (allowed)"
            } else {
                r.state.label()
            };
            writeln!(
                f,
                "  {:<16} {:<9} {:<27} {:<15} {}",
                r.id,
                r.component,
                severity,
                state,
                r.state.by()
            )?;
        }
        let mut names: Vec<&str> = Vec::new();
        for c in &self.findings {
            if !names.contains(&c.component.as_str()) {
                names.push(&c.component);
            }
        }
        for n in names {
            writeln!(f, "  {n}: {}", self.counts(n))?;
        }
        let blocking = self.blocking();
        if blocking.is_empty() {
            writeln!(f, "  no open high or critical CVE")
        } else {
            let ids: Vec<&str> = blocking.iter().map(|b| b.id.as_str()).collect();
            writeln!(
                f,
                "  OPEN and high, critical or unrated: {}",
                ids.join(", ")
            )
        }
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advisories::State;

    /// (not affected, open) for an OpenSSL candidate that ships no patches
    /// (an `openssl-src` crate), evaluated as the release would build it
    /// (same Configure options), and whether anything would block it.
    fn candidate(advisories: &Advisories, version: &str) -> (usize, usize, bool) {
        let c = Component {
            name: "openssl".into(),
            version: version.into(),
            patches: Vec::new(),
            patch_cves: BTreeMap::new(),
            build_options: build::OPENSSL_OPTIONS.map(String::from).to_vec(),
        };
        let findings = advisories::evaluate(advisories, &[c]).unwrap();
        let not_affected = findings
            .iter()
            .filter(|f| matches!(f.state, State::NotAffected(_)))
            .count();
        let open = findings.iter().filter(|f| f.state == State::Open).count();
        (not_affected, open, findings.iter().any(|f| f.blocks()))
    }

    /// The counting itself, on four advisories whose outcome is plain by
    /// reading them: one fixed before 3.6.3, one out of the built code
    /// (`no-dtls`), one open and high, one open and low.
    #[test]
    fn candidate_counts_of_a_hand_written_fixture() {
        let data = r#"
[[advisory]]
id = "CVE-A"
component = "openssl"
summary = "fixed in 3.6.2"
url = "https://example.invalid/A"
ratings = [{ source = "OpenSSL", severity = "high" }]
affected = [">= 3.6.0, < 3.6.2"]

[[advisory]]
id = "CVE-B"
component = "openssl"
summary = "DTLS"
url = "https://example.invalid/B"
ratings = [{ source = "OpenSSL", severity = "high" }]
affected = [">= 3.0.0"]

[advisory.not-affected."*"]
justification = "code_not_present"
detail = "no DTLS"
build-option = "no-dtls"

[[advisory]]
id = "CVE-C"
component = "openssl"
summary = "open, high"
url = "https://example.invalid/C"
ratings = [{ source = "OpenSSL", severity = "high" }]
affected = [">= 3.6.0"]

[[advisory]]
id = "CVE-D"
component = "openssl"
summary = "open, low"
url = "https://example.invalid/D"
ratings = [{ source = "OpenSSL", severity = "low" }]
affected = [">= 3.6.0"]
"#;
        let a = Advisories::parse(data).unwrap();
        assert_eq!(candidate(&a, "3.6.3"), (1, 2, true));
        // 3.6.1 is also hit by CVE-A; 3.5.9 only by CVE-B.
        assert_eq!(candidate(&a, "3.6.1"), (1, 3, true));
        assert_eq!(candidate(&a, "3.5.9"), (1, 0, false));
    }

    /// README's "Why OpenSSL 3.5.7" rows of the candidates that ship no
    /// patches (the `openssl-src` crates) follow from the data.
    #[test]
    fn the_readme_candidate_rows_follow_from_the_advisories() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let advisories = Advisories::load(&root).unwrap();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        for version in ["3.6.3", "4.0.3"] {
            let (not_affected, open, blocking) = candidate(&advisories, version);
            let row = format!(
                "| {version} | {} | {not_affected} | {open} |",
                not_affected + open
            );
            assert!(
                readme.contains(&row),
                "README.md lacks the row `{row}` the data gives"
            );
            assert!(
                blocking,
                "{version}: the README says it would need --allow-cve"
            );
        }
    }
}
