//! The plan: the new pin derived from the previous one before its tree is
//! known, then completed from the tree.

use super::*;

/// The series the new pin will use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPlan {
    /// Series folder of the new pin, relative to the repository root.
    pub dir: String,
    /// The previous line's folder it starts from; `None` when `dir` exists
    /// already (the same line, or a series prepared by hand).
    pub copy_from: Option<String>,
}

/// The new pin before its tree is known.
#[derive(Debug, Clone)]
pub struct Plan {
    pub component: Component,
    pub previous: SourcePin,
    pub slot: Slot,
    /// The new pin; its `tree`, `released` and `licenses` are the previous
    /// pin's until [`Plan::complete`] fills them in from the new tree.
    pub candidate: SourcePin,
    pub series: Option<SeriesPlan>,
    /// What the plan changed or dropped, for the report.
    pub notes: Vec<String>,
}

/// `8.0.2` → `[8, 0, 2]`; `None` for anything but dot-separated numbers.
fn version_key(v: &str) -> Option<Vec<u64>> {
    v.split('.').map(|p| p.parse().ok()).collect()
}

/// `redis-7.0.15.tar.gz` → `redis-8.0.2.tar.gz`; `None` when no old version
/// appears in `s` (such a name cannot be meant for the new version).
pub(super) fn retarget(s: &str, subs: &[(String, String)]) -> Option<String> {
    let (old, new) = subs.iter().find(|(old, _)| s.contains(old.as_str()))?;
    Some(s.replace(old.as_str(), new))
}

/// How the previous pin's names become the new version's: a crate version
/// first (it contains the upstream version), then the upstream version.
struct Substitutions {
    pairs: Vec<(String, String)>,
    /// `name@version` of the crate origin Cargo.lock resolves for the new
    /// version, if any.
    cargo_crate: Option<String>,
    /// The previous crate version, when Cargo.lock does not resolve one for
    /// the new version: names holding it are dropped.
    stale_crate: Option<String>,
    previous_version: String,
}

impl Substitutions {
    fn new(
        root: &Path,
        previous: &SourcePin,
        version: &str,
        notes: &mut Vec<String>,
    ) -> Result<Self> {
        let mut pairs = Vec::new();
        let mut cargo_crate = None;
        let mut stale_crate = None;
        if let Some(spec) = &previous.cargo_crate {
            let (name, old_crate_version) = spec
                .split_once('@')
                .context("cargo-crate must be name@version")?;
            let lock = fs::read_to_string(root.join("Cargo.lock"))
                .with_context(|| format!("reading {}", root.join("Cargo.lock").display()))?;
            let locked = lockfile::locked(&lock, name)?;
            if locked.version.rsplit_once('+').map(|(_, v)| v) == Some(version) {
                pairs.push((old_crate_version.to_string(), locked.version.clone()));
                cargo_crate = Some(format!("{name}@{}", locked.version));
            } else {
                stale_crate = Some(old_crate_version.to_string());
                notes.push(format!(
                    "crate origin dropped: Cargo.lock resolves {name} {}, not a release of {version}; \
                     to keep it, require the {name} version for {version} in xtask/Cargo.toml \
                     (`cargo update -p {name}`) and run this again",
                    locked.version
                ));
            }
        }
        pairs.push((previous.version.clone(), version.to_string()));
        Ok(Substitutions {
            pairs,
            cargo_crate,
            stale_crate,
            previous_version: previous.version.clone(),
        })
    }

    /// Each of `items` for the new version; what cannot be retargeted is
    /// dropped with a note.
    fn all(&self, what: &str, items: &[String], notes: &mut Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for s in items {
            if let Some(old) = self.stale_crate.as_deref().filter(|c| s.contains(c)) {
                notes.push(format!("{what} `{s}` dropped with the crate {old}"));
                continue;
            }
            match retarget(s, &self.pairs) {
                Some(t) => out.push(t),
                None => notes.push(format!(
                    "{what} `{s}` dropped: it does not name {}",
                    self.previous_version
                )),
            }
        }
        out
    }

    /// The tree's root folder for the new version (kept as it is when it
    /// names no version).
    fn root(&self, root: Option<&String>, notes: &mut Vec<String>) -> Option<String> {
        match root {
            None => None,
            Some(r) if self.stale_crate.as_deref().is_some_and(|c| r.contains(c)) => {
                notes.push(format!("root `{r}` dropped with the crate origin"));
                None
            }
            Some(r) => Some(retarget(r, &self.pairs).unwrap_or_else(|| r.clone())),
        }
    }
}

/// The pin the new one derives from, and where the new one goes: the same
/// Redis line, else the closest lower line (else the first pin); OpenSSL's.
fn previous_pin(pins: &Pins, component: Component, new_key: &[u64]) -> (SourcePin, Slot) {
    match component {
        Component::Openssl => (pins.openssl.clone(), Slot::Openssl),
        Component::Redis => {
            let line = new_key[..2]
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".");
            match pins.redis.iter().position(|p| p.line() == line) {
                Some(i) => (pins.redis[i].clone(), Slot::Redis(i)),
                None => {
                    let lower = pins
                        .redis
                        .iter()
                        .filter(|p| version_key(&p.version).is_some_and(|k| k.as_slice() < new_key))
                        .max_by_key(|p| version_key(&p.version));
                    let prev = lower.unwrap_or(&pins.redis[0]).clone();
                    (prev, Slot::NewRedisLine)
                }
            }
        }
    }
}

/// The Debian source package to look in: the previous pin's, with `--suite`'s
/// suites when given.
fn debian_pin(previous: &SourcePin, suites: &[String]) -> Result<Option<DebianPin>> {
    Ok(match (&previous.debian, suites.is_empty()) {
        (Some(d), true) => Some(d.clone()),
        (Some(d), false) => Some(DebianPin {
            package: d.package.clone(),
            suites: suites.to_vec(),
        }),
        (None, true) => None,
        (None, false) => bail!(
            "--suite given, but the {} pin names no Debian source package to look for in {PINS_FILE}",
            previous.id()
        ),
    })
}

/// The new pin's series folder: the previous one for the same line; for a new
/// line, the line's own folder, a copy of the previous line's unless it exists.
fn series_plan(
    root: &Path,
    previous: &SourcePin,
    slot: Slot,
    version: &str,
    notes: &mut Vec<String>,
) -> Option<SeriesPlan> {
    let dir = previous.patches.as_ref()?;
    if !matches!(slot, Slot::NewRedisLine) {
        return Some(SeriesPlan {
            dir: dir.clone(),
            copy_from: None,
        });
    }
    let prev_line = previous.line();
    let line = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let new_dir = match dir.strip_suffix(&prev_line) {
        Some(base) => format!("{base}{line}"),
        None => format!("patches/{}/{line}", previous.name),
    };
    let exists = root.join(&new_dir).join("series").is_file();
    if exists {
        notes.push(format!(
            "{new_dir} exists already: rehearsing it as it is, not a copy of {dir}"
        ));
    }
    Some(SeriesPlan {
        copy_from: (!exists).then(|| dir.clone()),
        dir: new_dir,
    })
}

impl Plan {
    /// Derive the new pin of `component` at `version` from `pins`. `root` is
    /// the repository (for Cargo.lock and the patch folders).
    pub fn new(
        root: &Path,
        pins: &Pins,
        component: Component,
        version: &str,
        suites: &[String],
    ) -> Result<Plan> {
        let new_key = version_key(version)
            .filter(|k| k.len() >= 2)
            .with_context(|| {
                format!("`{version}` is not a version: give the upstream release, e.g. 8.0.2")
            })?;
        let (previous, slot) = previous_pin(pins, component, &new_key);
        if previous.version == version {
            bail!("{component} {version} is already pinned in {PINS_FILE}");
        }
        let mut notes = Vec::new();
        let subs = Substitutions::new(root, &previous, version, &mut notes)?;
        let archives = subs.all("archive", &previous.archives, &mut notes);
        let urls = subs.all("address", &previous.urls, &mut notes);
        let root_dir = subs.root(previous.root.as_ref(), &mut notes);
        let debian = debian_pin(&previous, suites)?;
        let series = series_plan(root, &previous, slot, version, &mut notes);

        // A distribution's queue belongs to the version it was made for.
        if let Some(q) = &previous.security {
            notes.push(format!(
                "security queue {} dropped: it fixes {} {}; find the new version's with \
                 `cargo xtask upgrade {component} {version} --security` once it is pinned",
                q.debian, previous.name, previous.version
            ));
        }
        // A line's make variables answer that line's Makefile.
        let make = if matches!(slot, Slot::NewRedisLine) && !previous.make.is_empty() {
            notes.push(format!(
                "make variables `{}` of {} not carried to the new line: its Makefile chooses \
                 its own optimisation; add them to the new pin if `cargo xtask bench` shows them",
                previous.make.join(" "),
                previous.id()
            ));
            Vec::new()
        } else {
            previous.make.clone()
        };
        // A profile fits the sources it was trained on.
        let trained = root.join("profiles").join(previous.id());
        if trained.is_dir() {
            notes.push(format!(
                "profiles/{}/ is {}'s: {component} {version} builds without a profile until \
                 `cargo xtask pgo --redis {version}` trains one (commit it)",
                previous.id(),
                previous.id()
            ));
        }
        let candidate = SourcePin {
            version: version.to_string(),
            make,
            archives,
            urls,
            root: root_dir,
            debian,
            cargo_crate: subs.cargo_crate,
            patches: series.as_ref().map(|s| s.dir.clone()),
            security: None,
            ..previous.clone()
        };
        Ok(Plan {
            component,
            previous,
            slot,
            candidate,
            series,
            notes,
        })
    }

    /// Fill in what only the new tree can tell: its hash (from discovery),
    /// its release date and which licence files it has.
    pub fn complete(
        &mut self,
        tree: &treehash::TreeHash,
        dir: &Path,
        released: Option<&str>,
    ) -> Result<()> {
        self.candidate.tree = tree.clone();
        self.candidate.released = match released {
            Some(d) => d.to_string(),
            None => release_date(self.component, &self.candidate.version, dir)?,
        };
        self.candidate.release_epoch()?;
        let (kept, dropped) = self
            .previous
            .licenses
            .iter()
            .cloned()
            .partition::<Vec<_>, _>(|l| dir.join(l.split('#').next().unwrap_or(l)).is_file());
        for l in &dropped {
            self.notes.push(format!(
                "licence `{l}` dropped: {} {} has no such file",
                self.candidate.name, self.candidate.version
            ));
        }
        let mut licenses = kept;
        for found in licence_files(dir)? {
            let listed = licenses
                .iter()
                .any(|l| l.split('#').next() == Some(found.as_str()));
            if !listed {
                self.notes.push(format!(
                    "licence `{found}` added: a licence file the previous pin did not list"
                ));
                licenses.push(found);
            }
        }
        self.candidate.licenses = licenses;

        // Bundled components: the folders must exist; their versions are the
        // previous pin's until someone checks them against the new tree.
        let (present, gone) = self
            .previous
            .bundled
            .iter()
            .cloned()
            .partition::<Vec<_>, _>(|b| dir.join(&b.path).is_dir());
        for b in &gone {
            self.notes.push(format!(
                "bundled `{}` dropped: no folder {}",
                b.name, b.path
            ));
        }
        if !present.is_empty() {
            self.notes.push(format!(
                "bundled component versions ({}) are the previous pin's: check them against {}/deps/README.md before releasing",
                present.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", "),
                dir.display()
            ));
        }
        if let Ok(entries) = fs::read_dir(dir.join("deps")) {
            let mut unlisted: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| format!("deps/{}", e.file_name().to_string_lossy()))
                .filter(|p| !present.iter().any(|b| &b.path == p))
                .collect();
            unlisted.sort();
            for p in unlisted {
                self.notes.push(format!(
                    "{p} is not a bundled component of the pin: add it for the SBOM"
                ));
            }
        }
        self.candidate.bundled = present;
        Ok(())
    }
}
