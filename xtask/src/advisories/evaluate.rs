//! Each pinned component's state for each advisory, derived from its
//! version, the patches applied and the reviewed statements.

use super::*;

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
