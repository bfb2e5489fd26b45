//! `vendor/advisories.toml`: the known vulnerabilities of the pinned
//! components, and for each pinned version how it is addressed.
//!
//! The file is reviewed data: per CVE the component, its affected versions,
//! its ratings, and per pinned version the patches that fix it or the reason
//! it does not apply. What follows from the data is computed, never written
//! down: a pinned version outside every affected range is fixed upstream (or
//! predates the bug); one inside a range is patched only when a patch the
//! file names is really applied to it, not affected only with a stated
//! justification, and open otherwise. Claims the build can check are
//! checked: a build option must be one the build uses, and the symbols a
//! `code_not_present` statement names must be absent from the binaries.

use std::{
    cmp::Ordering,
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::Path,
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod version;
pub use version::*;
mod evaluate;
pub use evaluate::*;
mod claims;
pub use claims::*;

pub const ADVISORIES_FILE: &str = "vendor/advisories.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advisories {
    #[serde(rename = "advisory", default)]
    pub advisories: Vec<Advisory>,
    /// SHA-256 of the text they were read from.
    #[serde(skip)]
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Advisory {
    /// `CVE-2025-49844`.
    pub id: String,
    /// The component whose versions `affected` speaks of (`redis`,
    /// `openssl`, or one Redis bundles: `lua`, `hiredis`, …).
    pub component: String,
    /// One line: what goes wrong and what it allows.
    pub summary: String,
    /// Where the advisory is published.
    pub url: String,
    /// When, `YYYY-MM-DD`, where the record says.
    #[serde(default)]
    pub published: Option<String>,
    /// Published ratings; the highest decides (none: unknown).
    #[serde(default)]
    pub ratings: Vec<Rating>,
    /// Affected versions of the component: ranges like `>= 7.4.0, < 7.4.6`
    /// or `< 7.2.11`.
    pub affected: Vec<String>,
    /// Pinned version → the patches (file names in its series or security
    /// queue) that fix it.
    #[serde(default)]
    pub patched: BTreeMap<String, Vec<String>>,
    /// Pinned version (or `*`) → why it is not affected although its version
    /// is in range.
    #[serde(default)]
    pub not_affected: BTreeMap<String, NotAffected>,
    /// A reviewer's note (where the ranges differ from the record, …).
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rating {
    /// Who rated: the vendor (`OpenSSL`, `GitHub`) or another (`CISA-ADP`).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The CVSS vector, `CVSS:3.1/…` or `CVSS:4.0/…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Unknown,
    None,
    Low,
    /// OpenSSL's "Moderate".
    #[serde(alias = "moderate")]
    Medium,
    High,
    Critical,
}

impl Severity {
    /// CVSS v3/v4 qualitative bands.
    pub fn of_score(score: f64) -> Severity {
        match score {
            s if s >= 9.0 => Severity::Critical,
            s if s >= 7.0 => Severity::High,
            s if s >= 4.0 => Severity::Medium,
            s if s > 0.0 => Severity::Low,
            _ => Severity::None,
        }
    }

    /// Whether an open advisory of this severity stops a release (unknown
    /// counts as high: nobody has said it is less).
    pub fn blocks(self) -> bool {
        matches!(
            self,
            Severity::High | Severity::Critical | Severity::Unknown
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::None => "none",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// CycloneDX's `impactAnalysisJustification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Justification {
    CodeNotPresent,
    CodeNotReachable,
    RequiresConfiguration,
    RequiresDependency,
    RequiresEnvironment,
    ProtectedByCompiler,
    ProtectedAtRuntime,
    ProtectedAtPerimeter,
    ProtectedByMitigatingControl,
}

impl Justification {
    pub fn as_str(self) -> &'static str {
        match self {
            Justification::CodeNotPresent => "code_not_present",
            Justification::CodeNotReachable => "code_not_reachable",
            Justification::RequiresConfiguration => "requires_configuration",
            Justification::RequiresDependency => "requires_dependency",
            Justification::RequiresEnvironment => "requires_environment",
            Justification::ProtectedByCompiler => "protected_by_compiler",
            Justification::ProtectedAtRuntime => "protected_at_runtime",
            Justification::ProtectedAtPerimeter => "protected_at_perimeter",
            Justification::ProtectedByMitigatingControl => "protected_by_mitigating_control",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NotAffected {
    pub justification: Justification,
    pub detail: String,
    /// A build option that leaves the vulnerable code out (`no-dtls`): it
    /// must be one the component is built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_option: Option<String>,
    /// Functions of the vulnerable code: no released binary may define them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent_symbols: Vec<String>,
}

impl Advisory {
    /// The highest of the published ratings.
    pub fn severity(&self) -> Severity {
        self.ratings
            .iter()
            .flat_map(|r| {
                r.severity
                    .into_iter()
                    .chain(r.score.map(Severity::of_score))
            })
            .max()
            .unwrap_or(Severity::Unknown)
    }

    /// The highest published score, for tables.
    pub fn score(&self) -> Option<f64> {
        self.ratings
            .iter()
            .filter_map(|r| r.score)
            .max_by(|a, b| a.partial_cmp(b).unwrap_or(Ordering::Equal))
    }

    fn ranges(&self) -> Result<Vec<Range>> {
        self.affected
            .iter()
            .map(|r| Range::parse(r).with_context(|| format!("{}: affected `{r}`", self.id)))
            .collect()
    }
}

impl Advisories {
    pub fn load(root: &Path) -> Result<Advisories> {
        let path = root.join(ADVISORIES_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text)
            .with_context(|| format!("{} is not a valid advisories file", path.display()))
    }

    pub fn parse(text: &str) -> Result<Advisories> {
        let mut a: Advisories = toml::from_str(text)?;
        a.sha256 = crate::treehash::sha256_bytes(text.as_bytes());
        let mut seen = BTreeSet::new();
        for adv in &a.advisories {
            if !seen.insert((adv.id.as_str(), adv.component.as_str())) {
                bail!("{} for {} is listed twice", adv.id, adv.component);
            }
            if adv.affected.is_empty() {
                bail!("{}: `affected` lists no versions", adv.id);
            }
            adv.ranges()?;
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests;
