//! A CycloneDX 1.5 SBOM (JSON) for a release: Redis, OpenSSL and the
//! components Redis bundles, with versions, licences, hashes of their source
//! trees and the patches applied (a CVE fix as a backport that resolves it),
//! and a VEX: every known CVE of those components with how the release
//! stands (`vulnerabilities[]`, from `vendor/advisories.toml`).
//! Deterministic: the timestamp is SOURCE_DATE_EPOCH and the serial number
//! is derived from the content.

use serde::Serialize;

use crate::{
    advisories::{Finding, Severity, State},
    treehash,
};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    pub bom_format: &'static str,
    pub spec_version: &'static str,
    pub serial_number: String,
    pub version: u32,
    pub metadata: Metadata,
    pub components: Vec<Component>,
    pub dependencies: Vec<Dependency>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub timestamp: String,
    pub component: Component,
}

#[derive(Debug, Clone, Serialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pedigree: Option<Pedigree>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LicenseChoice {
    pub expression: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hash {
    pub alg: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pedigree {
    pub patches: Vec<Patch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Patch {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub diff: Diff,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolves: Vec<Issue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Issue {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub source: Source,
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One entry of the VEX.
#[derive(Debug, Clone, Serialize)]
pub struct Vulnerability {
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    pub id: String,
    pub source: Source,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<VulnRating>,
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<Advisory>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub analysis: Analysis,
    pub affects: Vec<Affects>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VulnRating {
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub severity: &'static str,
    pub method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Advisory {
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Analysis {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<&'static str>,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Affects {
    #[serde(rename = "ref")]
    pub reference: String,
}

/// A patch applied to a component: where it is, its text, and the CVEs it
/// fixes (none: a patch of our own that is not a CVE fix).
#[derive(Debug, Clone)]
pub struct PatchRef {
    pub url: String,
    pub text: String,
    pub resolves: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Diff {
    pub url: String,
    pub text: AttachedText,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachedText {
    pub content_type: &'static str,
    pub content: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Property {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    #[serde(rename = "ref")]
    pub reference: String,
    pub depends_on: Vec<String>,
}

/// One source component as the release knows it.
#[derive(Debug, Clone)]
pub struct SourceComponent {
    pub name: String,
    pub version: String,
    /// SPDX licence expression.
    pub license: String,
    /// The component's tree hash (`sha256:…`).
    pub tree: String,
    pub purl: Option<String>,
    pub note: Option<String>,
    /// Each patch applied to it.
    pub patches: Vec<PatchRef>,
    /// Components it ships inside its tree.
    pub bundled: Vec<SourceComponent>,
}

impl SourceComponent {
    fn bom_ref(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    fn to_component(&self) -> Component {
        let hex = self.tree.trim_start_matches("sha256:").to_string();
        Component {
            kind: "library",
            bom_ref: self.bom_ref(),
            name: self.name.clone(),
            version: self.version.clone(),
            description: self.note.clone(),
            licenses: vec![LicenseChoice {
                expression: self.license.clone(),
            }],
            hashes: vec![Hash {
                alg: "SHA-256",
                content: hex,
            }],
            purl: self.purl.clone(),
            pedigree: (!self.patches.is_empty()).then(|| Pedigree {
                patches: self
                    .patches
                    .iter()
                    .map(|p| Patch {
                        kind: if p.resolves.is_empty() {
                            "unofficial"
                        } else {
                            "backport"
                        },
                        diff: Diff {
                            url: p.url.clone(),
                            text: AttachedText {
                                content_type: "text/x-diff",
                                content: p.text.clone(),
                            },
                        },
                        resolves: p
                            .resolves
                            .iter()
                            .map(|id| Issue {
                                kind: "security",
                                id: id.clone(),
                                source: nvd(id),
                            })
                            .collect(),
                    })
                    .collect(),
            }),
            properties: vec![Property {
                name: "portable-redis:tree-hash".into(),
                value: format!("{} (definition: ARCHITECTURE.md, Tree hash)", self.tree),
            }],
        }
    }
}

/// Where a CVE is recorded.
fn nvd(id: &str) -> Source {
    Source {
        name: "NVD".into(),
        url: Some(format!("https://nvd.nist.gov/vuln/detail/{id}")),
    }
}

/// A finding of the audit as a VEX entry about component `name@version`.
pub fn vulnerability(f: &Finding) -> Vulnerability {
    let (state, justification, detail) = match &f.state {
        State::FixedUpstream { fixed_in } => (
            "resolved",
            None,
            format!(
                "fixed upstream in {fixed_in}; the release has {} {}",
                f.component, f.version
            ),
        ),
        State::FixedBefore { line, fixed_in } => (
            "resolved",
            None,
            format!(
                "fixed upstream in {fixed_in}, before the {line} line; the release has {} {}",
                f.component, f.version
            ),
        ),
        State::NotAffectedVersion { detail } => (
            "not_affected",
            Some("code_not_present"),
            format!("{detail}; the release has {} {}", f.component, f.version),
        ),
        State::Patched { patches } => (
            "resolved_with_pedigree",
            None,
            format!(
                "fixed by {} (the component's pedigree lists the patch)",
                patches.join(", ")
            ),
        ),
        State::NotAffected(n) => (
            "not_affected",
            Some(n.justification.as_str()),
            n.detail.clone(),
        ),
        State::Open => (
            "exploitable",
            None,
            if f.allowed {
                format!(
                    "open: no fix in the release; released anyway by --allow-cve {} (severity {})",
                    f.id,
                    f.severity.as_str()
                )
            } else {
                format!(
                    "open: no fix in the release (severity {}, below the release threshold of high)",
                    f.severity.as_str()
                )
            },
        ),
    };
    let ratings = f
        .ratings
        .iter()
        .map(|r| {
            let method = match r.vector.as_deref() {
                Some(v) if v.starts_with("CVSS:3.1/") => "CVSSv31",
                Some(v) if v.starts_with("CVSS:3.0/") => "CVSSv3",
                Some(v) if v.starts_with("CVSS:4.0/") => "CVSSv4",
                Some(v) if v.starts_with("AV:") => "CVSSv2",
                _ => "other",
            };
            let severity = r
                .severity
                .or(r.score.map(Severity::of_score))
                .unwrap_or(Severity::Unknown);
            VulnRating {
                source: Source {
                    name: r.source.clone(),
                    url: None,
                },
                score: r.score,
                severity: severity.as_str(),
                method,
                vector: r.vector.clone(),
            }
        })
        .collect();
    Vulnerability {
        bom_ref: format!("vex:{}@{}:{}", f.component, f.version, f.id),
        id: f.id.clone(),
        source: nvd(&f.id),
        ratings,
        description: f.summary.clone(),
        advisories: vec![Advisory { url: f.url.clone() }],
        published: f.published.as_ref().map(|d| format!("{d}T00:00:00Z")),
        analysis: Analysis {
            state,
            justification,
            detail,
        },
        affects: vec![Affects {
            reference: format!("{}@{}", f.component, f.version),
        }],
    }
}

/// The SBOM of release `name` (version `version`, for what the target's
/// `runs_on` says) built from `sources`, with `vulnerabilities` as its VEX.
pub fn bom(
    name: &str,
    version: &str,
    runs_on: &str,
    source_date_epoch: u64,
    sources: &[SourceComponent],
    vulnerabilities: &[Vulnerability],
) -> Bom {
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let root_ref = format!("portable-redis@{version}");
    for s in sources {
        components.push(s.to_component());
        dependencies.push(Dependency {
            reference: s.bom_ref(),
            depends_on: s.bundled.iter().map(SourceComponent::bom_ref).collect(),
        });
        for b in &s.bundled {
            components.push(b.to_component());
            dependencies.push(Dependency {
                reference: b.bom_ref(),
                depends_on: Vec::new(),
            });
        }
    }
    dependencies.insert(
        0,
        Dependency {
            reference: root_ref.clone(),
            depends_on: sources.iter().map(SourceComponent::bom_ref).collect(),
        },
    );
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        serial_number: String::new(),
        version: 1,
        metadata: Metadata {
            timestamp: rfc3339(source_date_epoch),
            component: Component {
                kind: "application",
                bom_ref: root_ref,
                name: name.to_string(),
                version: version.to_string(),
                description: Some(format!("Redis for {runs_on}, OpenSSL linked statically")),
                licenses: Vec::new(),
                hashes: Vec::new(),
                purl: None,
                pedigree: None,
                properties: Vec::new(),
            },
        },
        components,
        dependencies,
        vulnerabilities: vulnerabilities.to_vec(),
    };
    let digest = treehash::sha256_bytes(serde_json::to_string(&bom).unwrap_or_default().as_bytes());
    bom.serial_number = format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[13..16],
        &digest[17..20],
        &digest[20..32]
    );
    bom
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (civil-from-days, Howard Hinnant).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;
