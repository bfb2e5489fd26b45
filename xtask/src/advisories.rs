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

// ---------------------------------------------------------------------------
// Versions and ranges

/// `7.0.15` as numbers; a part that is not a number (`1.1.1zj`) keeps its
/// leading digits and its suffix, compared after them.
/// Missing parts count as zero: `8.0` is `8.0.0`.
#[derive(Debug, Clone)]
pub struct Version(Vec<(u64, String)>);

impl Version {
    pub fn parse(s: &str) -> Result<Version> {
        let s = s.trim();
        if s.is_empty() {
            bail!("empty version");
        }
        let mut parts = Vec::new();
        for p in s.split('.') {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() {
                bail!("`{s}` is not a version (dot-separated numbers)");
            }
            parts.push((digits.parse()?, p[digits.len()..].to_string()));
        }
        Ok(Version(parts))
    }
}

impl Version {
    /// `major.minor`: the release line.
    pub fn line(&self) -> String {
        let n = |i: usize| self.0.get(i).map_or(0, |p| p.0);
        format!("{}.{}", n(0), n(1))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        let zero = (0, String::new());
        for i in 0..n {
            let a = self.0.get(i).unwrap_or(&zero);
            let b = other.0.get(i).unwrap_or(&zero);
            let o =
                a.0.cmp(&b.0)
                    .then_with(|| a.1.len().cmp(&b.1.len()))
                    .then_with(|| a.1.cmp(&b.1));
            if o.is_ne() {
                return o;
            }
        }
        Ordering::Equal
    }
}

/// A conjunction of comparisons: `>= 7.4.0, < 7.4.6`.
#[derive(Debug, Clone)]
pub struct Range(Vec<(Op, Version)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Range {
    pub fn parse(s: &str) -> Result<Range> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (op, rest) = [
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
                ("=", Op::Eq),
            ]
            .iter()
            .find_map(|(t, op)| part.strip_prefix(t).map(|r| (*op, r)))
            .with_context(|| {
                format!("`{part}` is not `<`, `<=`, `>`, `>=` or `=` and a version")
            })?;
            out.push((op, Version::parse(rest)?));
        }
        Ok(Range(out))
    }

    pub fn contains(&self, v: &Version) -> bool {
        self.0.iter().all(|(op, b)| match op {
            Op::Lt => v < b,
            Op::Le => v <= b,
            Op::Gt => v > b,
            Op::Ge => v >= b,
            Op::Eq => v == b,
        })
    }

    /// The version the range ends before (`< X`), the fix of that branch.
    fn fixed_in(&self) -> Option<&Version> {
        self.0.iter().find(|(op, _)| *op == Op::Lt).map(|(_, v)| v)
    }

    /// Where the range starts (`>= X`), if it says.
    fn start(&self) -> Option<&Version> {
        self.0
            .iter()
            .find(|(op, _)| matches!(op, Op::Ge | Op::Gt | Op::Eq))
            .map(|(_, v)| v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(n, s)| format!("{n}{s}")).collect();
        f.write_str(&parts.join("."))
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// A component of a release as the audit sees it.
#[derive(Debug, Clone)]
pub struct Component {
    pub name: String,
    pub version: String,
    /// Names of the patches applied to it (series and security queue).
    pub patches: Vec<String>,
    /// The patches' own headers: which CVEs a patch says it fixes
    /// (`CVE: CVE-…` lines), by patch name.
    pub patch_cves: BTreeMap<String, Vec<String>>,
    /// Options it is built with (OpenSSL's Configure options).
    pub build_options: Vec<String>,
}

/// How one advisory stands for one pinned component.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// The pinned version is past the fix of its branch.
    FixedUpstream { fixed_in: String },
    /// Fixed on an older branch before the pinned version's branch began.
    FixedBefore { line: String, fixed_in: String },
    /// The pinned version predates the affected versions.
    NotAffectedVersion { detail: String },
    /// Patches applied to the pinned version fix it.
    Patched { patches: Vec<String> },
    /// In range, but a reviewed statement says why it does not apply.
    NotAffected(NotAffected),
    /// In range and nothing fixes it.
    Open,
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::FixedUpstream { .. } | State::FixedBefore { .. } => "fixed upstream",
            State::NotAffectedVersion { .. } | State::NotAffected(_) => "not affected",
            State::Patched { .. } => "patched",
            State::Open => "OPEN",
        }
    }

    /// What fixes it or why it does not apply, in a few words.
    pub fn by(&self) -> String {
        match self {
            State::FixedUpstream { fixed_in } => format!("fixed in {fixed_in}"),
            State::FixedBefore { line, fixed_in } => {
                format!("fixed before {line} (in {fixed_in})")
            }
            State::NotAffectedVersion { detail } => detail.clone(),
            State::Patched { patches } => patches.join(", "),
            State::NotAffected(n) => match &n.build_option {
                Some(o) => format!("{}: built with {o}", n.justification.as_str()),
                None => n.justification.as_str().to_string(),
            },
            State::Open => "no fix applied".to_string(),
        }
    }
}

/// One advisory against one component of a release.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: String,
    pub component: String,
    pub version: String,
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub summary: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    pub ratings: Vec<Rating>,
    #[serde(flatten)]
    pub state: State,
    /// Released anyway, by `dist --allow-cve`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allowed: bool,
}

impl Finding {
    /// Open, serious, and not allowed: a release must not ship it.
    pub fn blocks(&self) -> bool {
        self.state == State::Open && self.severity.blocks() && !self.allowed
    }
}

/// Every advisory of `components`, in the file's order, each with its state.
/// Data that contradicts the build (a patch that is not applied, a build
/// option that is not used, a statement for a version out of range) is an
/// error naming the advisory and the fix.
pub fn evaluate(advisories: &Advisories, components: &[Component]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    // (component, patch) → the advisories recorded as fixed by it.
    let mut claimed: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for c in components {
        let mine: Vec<&Advisory> = advisories
            .advisories
            .iter()
            .filter(|a| a.component == c.name)
            .collect();
        // Only a component that has advisories needs a comparable version
        // (linenoise has none, hdr_histogram is a commit).
        let version = match mine.is_empty() {
            true => None,
            false => Some(Version::parse(&c.version).with_context(|| {
                format!(
                    "{ADVISORIES_FILE} lists advisories for {}, whose pinned version `{}` is not comparable",
                    c.name, c.version
                )
            })?),
        };
        for (adv, version) in mine
            .into_iter()
            .zip(std::iter::repeat(version.as_ref()).flatten())
        {
            let state = state_of(adv, c, version)?;
            if let State::Patched { patches } = &state {
                for p in patches {
                    claimed
                        .entry((c.name.clone(), p.clone()))
                        .or_default()
                        .push(adv.id.clone());
                }
            }
            out.push(Finding {
                id: adv.id.clone(),
                component: c.name.clone(),
                version: c.version.clone(),
                severity: adv.severity(),
                score: adv.score(),
                summary: adv.summary.clone(),
                url: adv.url.clone(),
                published: adv.published.clone(),
                ratings: adv.ratings.clone(),
                state,
                allowed: false,
            });
        }
        // A patch that says it fixes a CVE must be recorded as fixing it.
        for (patch, cves) in &c.patch_cves {
            for cve in cves {
                let recorded = claimed
                    .get(&(c.name.clone(), patch.clone()))
                    .is_some_and(|ids| ids.contains(cve));
                if !recorded {
                    bail!(
                        "{patch} says it fixes {cve}, but {ADVISORIES_FILE} does not list it under \
                         {cve}'s `patched.\"{}\"` for {}: add the advisory or correct the patch header",
                        c.version,
                        c.name
                    );
                }
            }
        }
    }
    Ok(out)
}

fn state_of(adv: &Advisory, c: &Component, version: &Version) -> Result<State> {
    let ranges = adv.ranges()?;
    let in_range = ranges.iter().any(|r| r.contains(version));
    let patched = adv.patched.get(&c.version);
    let statement = adv
        .not_affected
        .get(&c.version)
        .or_else(|| adv.not_affected.get("*"));
    for key in adv.patched.keys().chain(adv.not_affected.keys()) {
        if key != "*" {
            Version::parse(key).with_context(|| format!("{}: `{key}` is not a version", adv.id))?;
        }
    }
    if !in_range {
        if patched.is_some() || adv.not_affected.contains_key(&c.version) {
            bail!(
                "{ADVISORIES_FILE}: {} has a statement for {} {}, which is outside its affected \
                 versions ({}): widen `affected` if the record misses this branch, else drop the statement",
                adv.id,
                c.name,
                c.version,
                adv.affected.join("; ")
            );
        }
        // Past the fix of its branch, or before the bug.
        let fixed = ranges
            .iter()
            .filter_map(Range::fixed_in)
            .filter(|f| *f <= version)
            .max();
        return Ok(match fixed {
            Some(f) if f.line() == version.line() => State::FixedUpstream {
                fixed_in: f.to_string(),
            },
            Some(f) => State::FixedBefore {
                line: version.line(),
                fixed_in: f.to_string(),
            },
            None => State::NotAffectedVersion {
                detail: match ranges.iter().filter_map(Range::start).min() {
                    Some(s) => format!("affected from {s} on"),
                    None => "outside the affected versions".to_string(),
                },
            },
        });
    }
    if let Some(patches) = patched {
        for p in patches {
            if !c.patches.iter().any(|a| a == p) {
                bail!(
                    "{ADVISORIES_FILE}: {} says {} {} is fixed by {p}, but no patch of that name is \
                     applied to it (its series and security queue in vendor/sources.toml): \
                     correct the name or add the patch",
                    adv.id,
                    c.name,
                    c.version
                );
            }
        }
        return Ok(State::Patched {
            patches: patches.clone(),
        });
    }
    if let Some(n) = statement {
        if let Some(opt) = &n.build_option {
            if !c.build_options.iter().any(|o| o == opt) {
                bail!(
                    "{ADVISORIES_FILE}: {} says {} {} is not affected because it is built with \
                     `{opt}`, but the build does not pass it (BuildFlags in xtask/src/build/mod.rs)",
                    adv.id,
                    c.name,
                    c.version
                );
            }
        }
        return Ok(State::NotAffected(n.clone()));
    }
    Ok(State::Open)
}

/// Mark the open findings `allowed` names; an id that matches no open finding
/// is an error (a stale or mistyped `--allow-cve`).
pub fn allow(findings: &mut [Finding], allowed: &[String]) -> Result<()> {
    for id in allowed {
        let mut hit = false;
        for f in findings
            .iter_mut()
            .filter(|f| &f.id == id && f.state == State::Open)
        {
            f.allowed = true;
            hit = true;
        }
        if !hit {
            bail!("--allow-cve {id}: no open advisory of this release has that id");
        }
    }
    Ok(())
}

/// The `absent-symbols` of every not-affected statement: `(advisory,
/// symbol)` pairs the given binaries must not define.
pub fn absent_symbols(findings: &[Finding]) -> Vec<(&str, &str)> {
    findings
        .iter()
        .filter_map(|f| match &f.state {
            State::NotAffected(n) => Some(
                n.absent_symbols
                    .iter()
                    .map(move |s| (f.id.as_str(), s.as_str())),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Check that no binary defines a symbol a `code_not_present` statement says
/// is absent. `binaries` are (name, unstripped ELF bytes).
pub fn check_absent(findings: &[Finding], binaries: &[(String, Vec<u8>)]) -> Result<usize> {
    use object::{Object, ObjectSymbol};
    let wanted = absent_symbols(findings);
    let mut problems = Vec::new();
    for (name, bytes) in binaries {
        let file = object::File::parse(&**bytes).with_context(|| format!("reading {name}"))?;
        let defined: BTreeSet<&str> = file
            .symbols()
            .filter(|s| s.is_definition())
            .filter_map(|s| s.name().ok())
            .collect();
        for (id, sym) in &wanted {
            if defined.contains(sym) {
                problems.push(format!("{name} defines {sym} ({id})"));
            }
        }
    }
    if !problems.is_empty() {
        bail!(
            "{ADVISORIES_FILE} says the vulnerable code is not in the release, but: {}; \
             check the build options or correct the statement",
            problems.join("; ")
        );
    }
    Ok(wanted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_and_ranges() {
        assert!(v("7.0.15") < v("7.2.0"));
        assert!(v("3.5.10") > v("3.5.9"));
        assert!(v("1.1.1zj") > v("1.1.1"));
        assert_eq!(v("8.0"), v("8.0.0"));
        let r = Range::parse(">= 7.4.0, < 7.4.6").unwrap();
        assert!(r.contains(&v("7.4.5")) && !r.contains(&v("7.4.6")) && !r.contains(&v("7.2.9")));
        assert!(Range::parse("< 7.2.11").unwrap().contains(&v("7.0.15")));
        assert!(Range::parse("about 7").is_err());
        assert!(Version::parse("x.1").is_err());
    }

    const DATA: &str = r#"
[[advisory]]
id = "CVE-1"
component = "redis"
summary = "Lua overflow"
url = "https://example/1"
ratings = [{ source = "GitHub", severity = "high", score = 7.0 }, { source = "CISA-ADP", score = 9.8 }]
affected = ["< 7.2.11", ">= 8.0.0, < 8.0.4"]
patched = { "7.0.15" = ["CVE-1.patch"] }

[[advisory]]
id = "CVE-2"
component = "redis"
summary = "cluster bus"
url = "https://example/2"
affected = [">= 7.2.0, < 7.2.9"]

[[advisory]]
id = "CVE-3"
component = "openssl"
summary = "DTLS"
url = "https://example/3"
ratings = [{ source = "OpenSSL", severity = "moderate" }]
affected = [">= 3.5.0, < 3.5.9"]

[advisory.not-affected."*"]
justification = "code_not_present"
detail = "no DTLS"
build-option = "no-dtls"
absent-symbols = ["DTLS_method"]

[[advisory]]
id = "CVE-4"
component = "openssl"
summary = "open one"
url = "https://example/4"
ratings = [{ source = "OpenSSL", severity = "low" }]
affected = [">= 3.5.0, < 3.5.10"]
"#;

    fn comp(name: &str, version: &str, patches: &[&str], opts: &[&str]) -> Component {
        Component {
            name: name.into(),
            version: version.into(),
            patches: patches.iter().map(|s| s.to_string()).collect(),
            patch_cves: BTreeMap::new(),
            build_options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn states_follow_from_versions_patches_and_statements() {
        let a = Advisories::parse(DATA).unwrap();
        let f = evaluate(
            &a,
            &[
                comp("redis", "7.0.15", &["CVE-1.patch"], &[]),
                comp("redis", "8.0.6", &[], &[]),
                comp("redis", "7.4.0", &[], &[]),
                comp("openssl", "3.5.7", &[], &["no-dtls"]),
            ],
        )
        .unwrap();
        let state = |id: &str, version: &str| {
            f.iter()
                .find(|x| x.id == id && x.version == version)
                .unwrap()
                .state
                .clone()
        };
        assert_eq!(
            state("CVE-1", "7.0.15"),
            State::Patched {
                patches: vec!["CVE-1.patch".into()]
            }
        );
        assert_eq!(
            state("CVE-1", "8.0.6"),
            State::FixedUpstream {
                fixed_in: "8.0.4".into()
            }
        );
        assert_eq!(
            state("CVE-1", "7.4.0"),
            State::FixedBefore {
                line: "7.4".into(),
                fixed_in: "7.2.11".into()
            }
        );
        assert!(matches!(
            state("CVE-2", "7.0.15"),
            State::NotAffectedVersion { .. }
        ));
        assert!(matches!(state("CVE-3", "3.5.7"), State::NotAffected(_)));
        assert_eq!(state("CVE-4", "3.5.7"), State::Open);
        // The highest rating decides; unrated is unknown and blocks.
        assert_eq!(a.advisories[0].severity(), Severity::Critical);
        assert_eq!(a.advisories[1].severity(), Severity::Unknown);
        assert_eq!(a.advisories[2].severity(), Severity::Medium);
        let open = f.iter().find(|x| x.id == "CVE-4").unwrap();
        assert!(!open.blocks(), "a low open finding does not block");
        assert_eq!(absent_symbols(&f), [("CVE-3", "DTLS_method")]);
    }

    #[test]
    fn claims_the_build_contradicts_are_errors() {
        let a = Advisories::parse(DATA).unwrap();
        let err = format!(
            "{:#}",
            evaluate(&a, &[comp("redis", "7.0.15", &[], &[])]).unwrap_err()
        );
        assert!(
            err.contains("CVE-1 says redis 7.0.15 is fixed by CVE-1.patch"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            evaluate(&a, &[comp("openssl", "3.5.7", &[], &[])]).unwrap_err()
        );
        assert!(err.contains("built with `no-dtls`"), "{err}");
        let mut c = comp("redis", "7.0.15", &["CVE-1.patch", "x.patch"], &[]);
        c.patch_cves.insert("x.patch".into(), vec!["CVE-9".into()]);
        let err = format!("{:#}", evaluate(&a, &[c]).unwrap_err());
        assert!(err.contains("x.patch says it fixes CVE-9"), "{err}");
        let out_of_range = DATA.replace(
            r#""7.0.15" = ["CVE-1.patch"]"#,
            r#""7.4.0" = ["CVE-1.patch"]"#,
        );
        let a = Advisories::parse(&out_of_range).unwrap();
        let err = format!(
            "{:#}",
            evaluate(&a, &[comp("redis", "7.4.0", &["CVE-1.patch"], &[])]).unwrap_err()
        );
        assert!(err.contains("outside its affected versions"), "{err}");
    }

    #[test]
    fn allowing_marks_open_findings_only() {
        let a = Advisories::parse(DATA).unwrap();
        let mut f = evaluate(&a, &[comp("redis", "8.0.6", &[], &[])]).unwrap();
        assert!(
            allow(&mut f, &["CVE-1".into()]).is_err(),
            "CVE-1 is fixed in 8.0.6"
        );
        let mut f2 = evaluate(&a, &[comp("openssl", "3.5.7", &[], &["no-dtls"])]).unwrap();
        allow(&mut f2, &["CVE-4".into()]).unwrap();
        assert!(f2.iter().any(|x| x.id == "CVE-4" && x.allowed));
        f.clear();
    }

    #[test]
    fn the_repository_advisories_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let a = Advisories::load(root).unwrap();
        assert!(a.advisories.iter().any(|x| x.component == "openssl"));
        assert!(a.advisories.iter().any(|x| x.component == "redis"));
    }
}
