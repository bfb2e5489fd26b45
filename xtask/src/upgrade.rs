//! `cargo xtask upgrade redis|openssl VERSION [--write]`: prepare the pin of a
//! new upstream version and rehearse its patch series.
//!
//! 1. plan: the new pin is derived from the previous one (the same Redis line,
//!    or the closest lower line for a new one; the OpenSSL pin): archive
//!    names and addresses follow the version, the Debian suites come from
//!    `--suite` or the previous pin, a new line's series folder starts as a
//!    copy of the previous line's;
//! 2. the tree is obtained through the vendor stage's origins in discovery
//!    mode (same origins, same safe extraction), which computes its hash;
//! 3. the release date is read from the tree (or `--released`), the licence
//!    list is checked against the tree;
//! 4. the series is rehearsed against the new tree (`patch --check`);
//! 5. only with `--write`: the new series folder and `vendor/sources.toml`
//!    (edited in place, comments and layout kept) are published, each by one
//!    rename. Without it nothing in the working tree changes.

use std::{
    fmt, fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    fsutil::{self, Staging},
    lockfile,
    outcome::Outcome,
    patch::{self, Rehearsal, Series},
    pins::{DebianPin, Pins, SourcePin, PINS_FILE},
    pins_edit::{render_pin, render_pins, Component, Slot},
    project::Project,
    treehash,
    vendor::{self, VendorOptions},
};

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
fn retarget(s: &str, subs: &[(String, String)]) -> Option<String> {
    let (old, new) = subs.iter().find(|(old, _)| s.contains(old.as_str()))?;
    Some(s.replace(old.as_str(), new))
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
        let mut notes = Vec::new();
        let (previous, slot) = match component {
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
                        // The closest lower line, else the first pin.
                        let lower = pins
                            .redis
                            .iter()
                            .filter(|p| version_key(&p.version).is_some_and(|k| k < new_key))
                            .max_by_key(|p| version_key(&p.version));
                        let prev = lower.unwrap_or(&pins.redis[0]).clone();
                        (prev, Slot::NewRedisLine)
                    }
                }
            }
        };
        if previous.version == version {
            bail!("{component} {version} is already pinned in {PINS_FILE}");
        }

        // Version substitutions: a crate version first (it contains the
        // upstream version), then the upstream version itself.
        let mut subs = Vec::new();
        let mut cargo_crate = None;
        // Names of a crate that Cargo.lock does not resolve for this version.
        let mut stale_crate = None;
        if let Some(spec) = &previous.cargo_crate {
            let (name, old_crate_version) = spec
                .split_once('@')
                .context("cargo-crate must be name@version")?;
            let lock = fs::read_to_string(root.join("Cargo.lock"))
                .with_context(|| format!("reading {}", root.join("Cargo.lock").display()))?;
            let locked = lockfile::locked(&lock, name)?;
            if locked.version.rsplit_once('+').map(|(_, v)| v) == Some(version) {
                subs.push((old_crate_version.to_string(), locked.version.clone()));
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
        subs.push((previous.version.clone(), version.to_string()));

        let retarget_all = |what: &str, items: &[String], notes: &mut Vec<String>| {
            let mut out = Vec::new();
            for s in items {
                if let Some(old) = stale_crate.as_deref().filter(|c| s.contains(c)) {
                    notes.push(format!("{what} `{s}` dropped with the crate {old}"));
                    continue;
                }
                match retarget(s, &subs) {
                    Some(t) => out.push(t),
                    None => notes.push(format!(
                        "{what} `{s}` dropped: it does not name {}",
                        previous.version
                    )),
                }
            }
            out
        };
        let archives = retarget_all("archive", &previous.archives, &mut notes);
        let urls = retarget_all("address", &previous.urls, &mut notes);
        let root_dir = match &previous.root {
            None => None,
            Some(r) if stale_crate.as_deref().is_some_and(|c| r.contains(c)) => {
                notes.push(format!("root `{r}` dropped with the crate origin"));
                None
            }
            Some(r) => Some(retarget(r, &subs).unwrap_or_else(|| r.clone())),
        };

        let debian = match (&previous.debian, suites.is_empty()) {
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
        };

        let series = match (&previous.patches, slot) {
            (None, _) => None,
            (Some(dir), Slot::Redis(_) | Slot::Openssl) => Some(SeriesPlan {
                dir: dir.clone(),
                copy_from: None,
            }),
            (Some(dir), Slot::NewRedisLine) => {
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
        };

        // A distribution's queue belongs to the version it was made for.
        if let Some(q) = &previous.security {
            notes.push(format!(
                "security queue {} dropped: it fixes {} {}; find the new version's with \
                 `cargo xtask upgrade {component} {version} --security` once it is pinned",
                q.debian, previous.name, previous.version
            ));
        }
        let candidate = SourcePin {
            version: version.to_string(),
            archives,
            urls,
            root: root_dir,
            debian,
            cargo_crate,
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

/// Licence files near the top of a tree (`COPYING`, `LICENSE*`, `COPYRIGHT`),
/// at most three folders deep, sorted.
fn licence_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<String>) -> Result<()> {
        let here = root.join(rel);
        for e in fs::read_dir(&here).with_context(|| format!("reading {}", here.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let child = rel.join(&name);
            let ft = e.file_type()?;
            if ft.is_dir() && depth < 3 {
                walk(root, &child, depth + 1, out)?;
            } else if ft.is_file() {
                let upper = name.to_ascii_uppercase();
                if upper == "COPYING"
                    || upper.starts_with("COPYING.")
                    || upper.starts_with("LICENSE")
                    || upper.starts_with("COPYRIGHT")
                {
                    out.push(child.display().to_string());
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, Path::new(""), 1, &mut out)?;
    out.sort();
    Ok(out)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// `9 Jan 2024`-like words (day, month name, year in any order of the first
/// two) → `2024-01-09`.
fn date_from_words(words: &[&str]) -> Option<String> {
    for w in words.windows(3) {
        let clean = |s: &str| {
            s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_ascii_lowercase()
        };
        let (a, b, c) = (clean(w[0]), clean(w[1]), clean(w[2]));
        let month = |s: &str| {
            MONTHS
                .iter()
                .position(|m| s.len() >= 3 && s.starts_with(m))
                .map(|i| i + 1)
        };
        let day = |s: &str| s.parse::<u32>().ok().filter(|d| (1..=31).contains(d));
        let Some(year) = c.parse::<u32>().ok().filter(|y| (1990..=9999).contains(y)) else {
            continue;
        };
        let (d, m) = match (day(&a), month(&b), month(&a), day(&b)) {
            (Some(d), Some(m), _, _) => (d, m),
            (_, _, Some(m), Some(d)) => (d, m),
            _ => continue,
        };
        return Some(format!("{year:04}-{m:02}-{d:02}"));
    }
    None
}

/// The release date the tree itself states: Redis's `00-RELEASENOTES`
/// (`Redis 7.0.15 Released Tue 09 Jan 2024 …`), OpenSSL's `VERSION.dat`
/// (`RELEASE_DATE="27 Jan 2026"`).
pub fn release_date(component: Component, version: &str, dir: &Path) -> Result<String> {
    let (file, found) = match component {
        Component::Redis => {
            let file = "00-RELEASENOTES";
            let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
            let heading = format!("Redis {version} ");
            let date = text
                .lines()
                .filter(|l| l.contains(&heading) || l.contains(&format!("Redis {version}(")))
                .find_map(|l| {
                    let words: Vec<&str> = l.split_whitespace().collect();
                    date_from_words(&words)
                });
            (file, date)
        }
        Component::Openssl => {
            let file = "VERSION.dat";
            let text = fs::read_to_string(dir.join(file)).unwrap_or_default();
            let date = text.lines().find_map(|l| {
                let v = l.strip_prefix("RELEASE_DATE=")?.trim_matches('"');
                date_from_words(&v.split_whitespace().collect::<Vec<_>>())
            });
            (file, date)
        }
    };
    found.with_context(|| {
        format!(
            "{component} {version}: {file} in {} gives no full release date (day, month, year); \
             pass --released YYYY-MM-DD, the date of the upstream release (the release \
             announcement or the tag), so SOURCE_DATE_EPOCH stays that date",
            dir.display()
        )
    })
}

// ---------------------------------------------------------------------------
// The series

/// Copy the series in `from` (its `series` file and the patches it lists) into
/// the empty folder `to`, noting where it started in the new `series` file.
pub fn copy_series(from: &Path, to: &Path, header: &str) -> Result<Series> {
    let list = from.join("series");
    let text = fs::read_to_string(&list).with_context(|| format!("reading {}", list.display()))?;
    let series = Series::load(from)?;
    for p in &series.patches {
        let src = from.join(&p.name);
        fs::copy(&src, to.join(&p.name)).with_context(|| format!("copying {}", src.display()))?;
    }
    fsutil::write_atomic(&to.join("series"), format!("# {header}\n{text}").as_bytes())?;
    Series::load(to)
}

// ---------------------------------------------------------------------------
// The command

#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub component: Component,
    pub version: String,
    pub write: bool,
    pub suites: Vec<String>,
    pub released: Option<String>,
    pub vendor: VendorOptions,
}

impl UpgradeOptions {
    /// This command line again, with `--write`.
    fn accept_command(&self) -> String {
        let mut c = format!("cargo xtask upgrade {} {}", self.component, self.version);
        for s in &self.suites {
            c.push_str(&format!(" --suite {s}"));
        }
        if let Some(d) = &self.released {
            c.push_str(&format!(" --released {d}"));
        }
        c + " --write"
    }
}

/// What an upgrade found; printed, and written only with `--write`.
pub struct UpgradeReport {
    pub plan: Plan,
    pub origin: String,
    pub archive_sha256: Option<String>,
    pub pins_text: String,
    pub rehearsal: Option<Rehearsal>,
    pub written: bool,
    /// The command that accepts this rehearsal.
    pub accept_command: String,
}

impl UpgradeReport {
    pub fn failed(&self) -> usize {
        self.rehearsal.as_ref().map_or(0, Rehearsal::failed)
    }

    /// Every patch applies.
    pub fn passed(&self) -> bool {
        self.failed() == 0
    }

    /// Exit 0 when every patch applies, 1 when one fails.
    pub fn outcome(&self) -> Outcome {
        Outcome::of(self.passed())
    }

    /// The last word: what was written, what is left to do.
    pub fn verdict(&self) -> String {
        let failed = self.failed();
        let c = &self.plan.candidate;
        let port = match &self.plan.series {
            Some(s) if failed > 0 => format!(
                "fix the failing patches in {}/ and check them with `cargo xtask patch --check --redis {}`",
                s.dir,
                c.line()
            ),
            _ => String::new(),
        };
        if !self.written {
            return if failed > 0 {
                format!(
                    "{failed} patch(es) fail against {} {}; nothing was written. To accept: `{}`, then {port}",
                    c.name, c.version, self.accept_command
                )
            } else {
                format!("nothing was written. To accept: `{}`", self.accept_command)
            };
        }
        let mut v = format!("wrote {PINS_FILE}");
        if let Some(SeriesPlan {
            dir,
            copy_from: Some(from),
        }) = &self.plan.series
        {
            v.push_str(&format!(" and {dir}/ (a copy of {from})"));
        }
        if failed > 0 {
            v.push_str(&format!("; {failed} patch(es) fail: {port}"));
        }
        v
    }
}

impl fmt::Display for UpgradeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.plan;
        let c = &p.candidate;
        let what = match p.slot {
            Slot::NewRedisLine => format!("a new line beside {}", p.previous.line()),
            _ => format!("replaces {}", p.previous.version),
        };
        writeln!(
            f,
            "upgrade {} {} -> {} ({what})",
            p.component, p.previous.version, c.version
        )?;
        writeln!(f, "  source:   {}", self.origin)?;
        if let Some(h) = &self.archive_sha256 {
            writeln!(f, "  archive:  sha256 {h}")?;
        }
        writeln!(f, "  tree:     {}", c.tree)?;
        writeln!(f, "  released: {}", c.released)?;
        if let Some(s) = &p.series {
            match &s.copy_from {
                Some(from) => writeln!(f, "  series:   {} (started from {from})", s.dir)?,
                None => writeln!(f, "  series:   {}", s.dir)?,
            }
        }
        for n in &p.notes {
            writeln!(f, "  note: {n}")?;
        }
        writeln!(f)?;
        writeln!(f, "new pin for {PINS_FILE}:")?;
        match render_pin(c, p.slot) {
            Ok(t) => write!(f, "{t}")?,
            Err(e) => writeln!(f, "  ({e:#})")?,
        }
        if let Some(r) = &self.rehearsal {
            writeln!(f)?;
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

pub fn run(project: &Project, opts: &UpgradeOptions) -> Result<UpgradeReport> {
    let pins_path = project.root.join(PINS_FILE);
    let text = fs::read_to_string(&pins_path)
        .with_context(|| format!("reading {}", pins_path.display()))?;
    let pins = Pins::parse(&text)
        .with_context(|| format!("{} is not a valid pins file", pins_path.display()))?;
    let mut plan = Plan::new(
        &project.root,
        &pins,
        opts.component,
        &opts.version,
        &opts.suites,
    )?;
    let _lock = project.lock()?;
    eprintln!(
        "upgrade: fetching {} {} (tree hash to be computed)",
        opts.component, opts.version
    );
    let source = vendor::discover(project, &plan.candidate, &opts.vendor).map_err(|e| {
        if plan.notes.is_empty() {
            e
        } else {
            e.context(format!(
                "{} {} was not found; the plan says: {}",
                opts.component,
                opts.version,
                plan.notes.join("; ")
            ))
        }
    })?;
    plan.complete(&source.pin.tree, &source.dir, opts.released.as_deref())?;
    let pins_text = render_pins(&text, plan.slot, &plan.previous, &plan.candidate)?;

    // The series, staged in the state folder: the working tree is not touched.
    let scratch = project
        .scratch()
        .join(format!("upgrade-{}", plan.candidate.id()));
    let staged = Staging::beside(&scratch.join("series"))?;
    let rehearsal = match &plan.series {
        None => None,
        Some(s) => {
            let series = match &s.copy_from {
                Some(from) => copy_series(
                    &project.root.join(from),
                    staged.path(),
                    &format!(
                        "Started from {from} when {} {} was pinned.",
                        plan.candidate.name, plan.candidate.version
                    ),
                )?,
                None => Series::load(&project.root.join(&s.dir))?,
            };
            let series_name = match &s.copy_from {
                Some(from) => format!("{} (a copy of {from})", s.dir),
                None => s.dir.clone(),
            };
            Some(Rehearsal {
                series: series_name,
                against: format!("{} {}", plan.candidate.name, plan.candidate.version),
                reports: patch::check_series(&source.dir, &series, &scratch.join("tree"))?,
            })
        }
    };

    let archive_sha256 = match &source.archive {
        Some(a) => Some(treehash::sha256_file(a)?),
        None => None,
    };
    let mut outcome = UpgradeReport {
        plan,
        origin: source.origin.clone(),
        archive_sha256,
        pins_text,
        rehearsal,
        written: false,
        accept_command: opts.accept_command(),
    };
    if opts.write {
        publish(&project.root, &outcome, staged)?;
        outcome.written = true;
    }
    Ok(outcome)
}

/// Publish the new series folder (one rename), then the pins file (one
/// rename); if the second fails, the first is undone.
fn publish(root: &Path, outcome: &UpgradeReport, staged: Staging) -> Result<()> {
    let mut published: Option<PathBuf> = None;
    if let Some(SeriesPlan {
        dir,
        copy_from: Some(_),
    }) = &outcome.plan.series
    {
        let dest = root.join(dir);
        if dest.exists() {
            bail!(
                "{} appeared while the rehearsal ran; nothing was written",
                dest.display()
            );
        }
        // Copy beside the destination (same file system), then rename.
        let beside = Staging::beside(&dest)?;
        fsutil::copy_tree(staged.path(), beside.path())?;
        beside.commit(&dest)?;
        published = Some(dest);
    }
    let pins = root.join(PINS_FILE);
    if let Err(e) = fsutil::write_atomic(&pins, outcome.pins_text.as_bytes()) {
        if let Some(dir) = published {
            let _ = fsutil::make_writable_and_remove(&dir);
        }
        return Err(e.context(format!("writing {}; nothing was written", pins.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_hash(s: char) -> treehash::TreeHash {
        format!("sha256:{}", s.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn retargets_names_and_addresses() {
        let subs = vec![("7.0.15".to_string(), "8.0.2".to_string())];
        assert_eq!(
            retarget(
                "https://download.example/releases/redis-7.0.15.tar.gz",
                &subs
            )
            .as_deref(),
            Some("https://download.example/releases/redis-8.0.2.tar.gz")
        );
        assert_eq!(retarget("redis-latest.tar.gz", &subs), None);
        // A crate version containing the upstream version goes first.
        let subs = vec![
            ("300.5.5+3.5.5".to_string(), "300.5.6+3.5.6".to_string()),
            ("3.5.5".to_string(), "3.5.6".to_string()),
        ];
        assert_eq!(
            retarget("openssl-src-300.5.5+3.5.5/openssl", &subs).as_deref(),
            Some("openssl-src-300.5.6+3.5.6/openssl")
        );
    }

    #[test]
    fn reads_release_dates_from_the_tree() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("00-RELEASENOTES"),
            "Upgrade urgency: SECURITY\n\n================\nRedis 7.0.15 Released Tue 09 Jan 2024 10:45:52 IST\n================\nRedis 7.0.14 Released Thu 02 Nov 2023\n",
        )
        .unwrap();
        assert_eq!(
            release_date(Component::Redis, "7.0.15", d.path()).unwrap(),
            "2024-01-09"
        );
        assert_eq!(
            release_date(Component::Redis, "7.0.14", d.path()).unwrap(),
            "2023-11-02"
        );
        let err = format!(
            "{:#}",
            release_date(Component::Redis, "7.0.1", d.path()).unwrap_err()
        );
        assert!(err.contains("--released YYYY-MM-DD"), "{err}");
        fs::write(
            d.path().join("VERSION.dat"),
            "MAJOR=3\nRELEASE_DATE=\"27 Jan 2026\"\n",
        )
        .unwrap();
        assert_eq!(
            release_date(Component::Openssl, "3.5.5", d.path()).unwrap(),
            "2026-01-27"
        );
        assert_eq!(
            date_from_words(&["(May", "27", "2025)"]).as_deref(),
            Some("2025-05-27")
        );
        assert_eq!(date_from_words(&["(May", "2025)"]), None);
    }

    const PINS: &str = r#"# The pins.

[toolchain]
zig-version = "0.17.1"
wheel = "w.whl"
wheel-sha256 = "00"
target = "x86_64-linux-gnu.2.11"
cpu = "baseline"
opt = "-O2"

# OpenSSL from its crate.
[openssl]
name = "openssl"
version = "3.5.5"
released = "2026-01-27"
tree = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
archives = ["openssl-src-300.5.5+3.5.5.crate"]
root = "openssl-src-300.5.5+3.5.5/openssl"
urls = ["https://crates.example/openssl-src-300.5.5+3.5.5.crate"]
cargo-crate = "openssl-src@300.5.5+3.5.5"
license = "Apache-2.0"
licenses = ["LICENSE.txt"]

[[redis]]
name = "redis"
version = "7.0.15"
released = "2024-01-09"
tree = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
archives = ["redis-7.0.15.tar.gz", "redis_7.0.15.orig.tar.gz"]
urls = ["https://download.example/releases/redis-7.0.15.tar.gz"]
debian = { package = "redis", suites = ["bookworm", "bookworm-security"] }
patches = "patches/redis/7.0"
license = "BSD-3-Clause"
licenses = [
    "COPYING",   # the main licence
    "deps/linenoise/linenoise.c#header",
]

[[redis.bundled]]
name = "linenoise"
path = "deps/linenoise"
version = "unversioned"
license = "BSD-2-Clause"
"#;

    fn lock(openssl_src: &str) -> String {
        format!(
            "version = 4\n\n[[package]]\nname = \"openssl-src\"\nversion = \"{openssl_src}\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ab\"\n"
        )
    }

    /// A repository with the pins above, a 7.0 series and a Cargo.lock.
    fn repo() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("vendor")).unwrap();
        fs::write(d.path().join(PINS_FILE), PINS).unwrap();
        fs::write(d.path().join("Cargo.lock"), lock("300.5.5+3.5.5")).unwrap();
        let s = d.path().join("patches/redis/7.0");
        fs::create_dir_all(&s).unwrap();
        fs::write(s.join("series"), "# 7.0 series\n0001-a.patch\n").unwrap();
        fs::write(
            s.join("0001-a.patch"),
            "--- a/src/f.c\n+++ b/src/f.c\n@@ -1,3 +1,4 @@\n one\n two\n+two and a half\n three\n",
        )
        .unwrap();
        fs::write(s.join("notes.txt"), "not part of the series\n").unwrap();
        d
    }

    #[test]
    fn plans_a_new_redis_line_from_the_previous_one() {
        let r = repo();
        let pins = Pins::parse(PINS).unwrap();
        let plan = Plan::new(
            r.path(),
            &pins,
            Component::Redis,
            "8.0.2",
            &["trixie".into()],
        )
        .unwrap();
        assert_eq!(plan.slot, Slot::NewRedisLine);
        assert_eq!(plan.previous.version, "7.0.15");
        let c = &plan.candidate;
        assert_eq!(
            c.archives,
            ["redis-8.0.2.tar.gz", "redis_8.0.2.orig.tar.gz"]
        );
        assert_eq!(
            c.urls,
            ["https://download.example/releases/redis-8.0.2.tar.gz"]
        );
        assert_eq!(c.debian.as_ref().unwrap().suites, ["trixie"]);
        assert_eq!(c.patches.as_deref(), Some("patches/redis/8.0"));
        assert_eq!(
            plan.series,
            Some(SeriesPlan {
                dir: "patches/redis/8.0".into(),
                copy_from: Some("patches/redis/7.0".into())
            })
        );
        // The suites default to the previous pin's.
        let plan = Plan::new(r.path(), &pins, Component::Redis, "7.0.16", &[]).unwrap();
        assert_eq!(plan.slot, Slot::Redis(0));
        assert_eq!(
            plan.candidate.debian.unwrap().suites,
            ["bookworm", "bookworm-security"]
        );
        assert_eq!(
            plan.series.unwrap().copy_from,
            None,
            "same line, same series"
        );
        // Already pinned, or not a version: clear errors.
        let err = format!(
            "{:#}",
            Plan::new(r.path(), &pins, Component::Redis, "7.0.15", &[]).unwrap_err()
        );
        assert!(err.contains("already pinned"), "{err}");
        assert!(Plan::new(r.path(), &pins, Component::Redis, "eight", &[]).is_err());
    }

    #[test]
    fn openssl_follows_the_crate_cargo_lock_resolves() {
        let r = repo();
        let pins = Pins::parse(PINS).unwrap();
        // Cargo.lock still resolves the old crate: the crate origin is dropped.
        let plan = Plan::new(r.path(), &pins, Component::Openssl, "3.5.6", &[]).unwrap();
        assert_eq!(plan.candidate.cargo_crate, None);
        assert!(plan.candidate.archives.is_empty(), "{:?}", plan.candidate);
        assert!(
            plan.notes.iter().any(|n| n.contains("xtask/Cargo.toml")),
            "{:?}",
            plan.notes
        );
        fs::write(r.path().join("Cargo.lock"), lock("300.5.6+3.5.6")).unwrap();
        let plan = Plan::new(r.path(), &pins, Component::Openssl, "3.5.6", &[]).unwrap();
        let c = &plan.candidate;
        assert_eq!(c.cargo_crate.as_deref(), Some("openssl-src@300.5.6+3.5.6"));
        assert_eq!(c.archives, ["openssl-src-300.5.6+3.5.6.crate"]);
        assert_eq!(c.root.as_deref(), Some("openssl-src-300.5.6+3.5.6/openssl"));
        assert_eq!(plan.slot, Slot::Openssl);
        assert_eq!(plan.series, None);
    }

    fn completed_plan(r: &Path, version: &str) -> (Plan, tempfile::TempDir) {
        let pins = Pins::parse(PINS).unwrap();
        let mut plan = Plan::new(r, &pins, Component::Redis, version, &["trixie".into()]).unwrap();
        let tree = tempfile::tempdir().unwrap();
        fs::create_dir_all(tree.path().join("deps/linenoise")).unwrap();
        fs::create_dir_all(tree.path().join("deps/fast_float")).unwrap();
        fs::write(
            tree.path().join("deps/linenoise/linenoise.c"),
            "/* BSD */\n",
        )
        .unwrap();
        fs::write(tree.path().join("deps/fast_float/LICENSE-MIT"), "MIT\n").unwrap();
        fs::write(tree.path().join("LICENSE.txt"), "tri\n").unwrap();
        fs::write(
            tree.path().join("00-RELEASENOTES"),
            format!("Redis {version} Released Tue 27 May 2025 10:00:00 IST\n"),
        )
        .unwrap();
        plan.complete(&tree_hash('3'), tree.path(), None).unwrap();
        (plan, tree)
    }

    #[test]
    fn completes_date_and_licences_from_the_new_tree() {
        let r = repo();
        let (plan, _tree) = completed_plan(r.path(), "8.0.2");
        let c = &plan.candidate;
        assert_eq!(c.released, "2025-05-27");
        assert_eq!(c.tree, tree_hash('3'));
        assert_eq!(
            c.licenses,
            [
                "deps/linenoise/linenoise.c#header",
                "LICENSE.txt",
                "deps/fast_float/LICENSE-MIT"
            ]
        );
        assert!(plan.notes.iter().any(|n| n.contains("`COPYING` dropped")));
    }

    #[test]
    fn writes_a_new_line_and_keeps_the_rest_of_the_file() {
        let r = repo();
        let (plan, _tree) = completed_plan(r.path(), "8.0.2");
        let out = render_pins(PINS, plan.slot, &plan.previous, &plan.candidate).unwrap();
        assert!(
            out.starts_with(PINS),
            "the old text is kept as it was:\n{out}"
        );
        let pins = Pins::parse(&out).unwrap();
        assert_eq!(pins.redis.len(), 2);
        assert_eq!(
            pins.redis[0].version, "7.0.15",
            "the default line stays first"
        );
        let new = pins.redis(Some("8.0")).unwrap();
        assert_eq!(new.tree, tree_hash('3'));
        assert_eq!(new.patches.as_deref(), Some("patches/redis/8.0"));
        assert!(
            out.contains("\n[[redis]]\nname = \"redis\"\nversion = \"8.0.2\""),
            "{out}"
        );
        assert!(out.contains("licenses = [\n    \"deps/linenoise"), "{out}");
    }

    #[test]
    fn replaces_a_pin_in_place_keeping_comments_and_unchanged_layout() {
        let r = repo();
        let (plan, _tree) = completed_plan(r.path(), "7.0.16");
        assert_eq!(plan.slot, Slot::Redis(0));
        let out = render_pins(PINS, plan.slot, &plan.previous, &plan.candidate).unwrap();
        assert!(
            out.contains("# OpenSSL from its crate.\n[openssl]"),
            "{out}"
        );
        assert!(out.contains("version = \"7.0.16\""), "{out}");
        assert!(!out.contains("7.0.15"), "{out}");
        assert!(
            out.contains("patches = \"patches/redis/7.0\""),
            "unchanged keys keep their layout: {out}"
        );
        let pins = Pins::parse(&out).unwrap();
        assert_eq!(pins.redis.len(), 1);
        assert_eq!(pins.redis[0].released, "2025-05-27");
        assert_eq!(pins.openssl.version, "3.5.5");
    }

    #[test]
    fn copies_the_listed_patches_and_notes_the_origin() {
        let r = repo();
        let to = tempfile::tempdir().unwrap();
        let series = copy_series(
            &r.path().join("patches/redis/7.0"),
            to.path(),
            "Started from patches/redis/7.0.",
        )
        .unwrap();
        assert_eq!(series.patches.len(), 1);
        assert_eq!(
            fs::read_to_string(to.path().join("series")).unwrap(),
            "# Started from patches/redis/7.0.\n# 7.0 series\n0001-a.patch\n"
        );
        assert_eq!(
            fs::read(to.path().join("0001-a.patch")).unwrap(),
            fs::read(r.path().join("patches/redis/7.0/0001-a.patch")).unwrap()
        );
        assert!(!to.path().join("notes.txt").exists(), "only the series");
    }

    /// A release archive of a crafted Redis tree, in a mirror folder.
    fn mirror_with(version: &str, f_c: &str) -> tempfile::TempDir {
        let m = tempfile::tempdir().unwrap();
        let top = format!("redis-{version}");
        crate::archive::tests::Crafted::new()
            .file(&format!("{top}/src/f.c"), f_c, 0o644)
            .file(
                &format!("{top}/00-RELEASENOTES"),
                &format!("Redis {version} Released Tue 27 May 2025 12:00:00 IST\n"),
                0o644,
            )
            .file(&format!("{top}/COPYING"), "BSD\n", 0o644)
            .file(
                &format!("{top}/deps/linenoise/linenoise.c"),
                "/* BSD */\n",
                0o644,
            )
            .write(&m.path().join(format!("redis-{version}.tar.gz")));
        m
    }

    fn options(mirror: &Path, write: bool) -> UpgradeOptions {
        UpgradeOptions {
            component: Component::Redis,
            version: "8.0.2".into(),
            write,
            suites: vec!["trixie".into()],
            released: None,
            vendor: VendorOptions {
                mirror: Some(mirror.to_path_buf()),
                offline: true,
            },
        }
    }

    /// The crafted repository and an empty state folder.
    fn checkout() -> (tempfile::TempDir, tempfile::TempDir, Project) {
        let r = repo();
        let state = tempfile::tempdir().unwrap();
        let project = Project::new(r.path().to_path_buf(), state.path().to_path_buf());
        (r, state, project)
    }

    #[test]
    fn a_rehearsal_changes_nothing_and_write_publishes_pin_and_series() {
        let (r, _state, project) = checkout();
        let before = crate::treehash::tree_hash(r.path()).unwrap();
        // The new release moved the hunk down two lines: it applies with offset.
        let mirror = mirror_with("8.0.2", "zero\nzero\none\ntwo\nthree\n");
        let o = run(&project, &options(mirror.path(), false)).unwrap();
        let rehearsal = o.rehearsal.as_ref().unwrap();
        assert_eq!(rehearsal.reports[0].status(), "applies with offset");
        assert_eq!((o.failed(), o.outcome().code(), o.written), (0, 0, false));
        assert!(
            o.verdict().contains("nothing was written"),
            "{}",
            o.verdict()
        );
        assert!(
            o.verdict().ends_with("--suite trixie --write`"),
            "{}",
            o.verdict()
        );
        let shown = o.to_string();
        assert!(shown.contains("version = \"8.0.2\""), "{shown}");
        assert!(
            shown.contains("0001-a.patch: applies with offset"),
            "{shown}"
        );
        assert_eq!(
            crate::treehash::tree_hash(r.path()).unwrap(),
            before,
            "a rehearsal leaves the working tree as it was"
        );
        let scratch = project.scratch().join("upgrade-redis-8.0.2");
        assert_eq!(
            fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0),
            0,
            "no staged series left in the state folder"
        );

        let o = run(&project, &options(mirror.path(), true)).unwrap();
        assert!(o.written);
        let pins = Pins::load(r.path()).unwrap();
        let new = pins.redis(Some("8.0")).unwrap();
        assert_eq!(
            pins.redis[0].version, "7.0.15",
            "the default line stays first"
        );
        assert_eq!(new.released, "2025-05-27");
        // The pinned tree is what the vendor stage now accepts from the mirror.
        let again = vendor::vendor(
            &project,
            new,
            &VendorOptions {
                mirror: Some(mirror.path().to_path_buf()),
                offline: true,
            },
        )
        .unwrap();
        assert_eq!(
            crate::treehash::tree_hash(&again.dir).unwrap(),
            new.tree,
            "the written hash is the tree's"
        );
        let series = r.path().join("patches/redis/8.0");
        assert!(fs::read_to_string(series.join("series"))
            .unwrap()
            .starts_with("# Started from patches/redis/7.0 when redis 8.0.2 was pinned.\n"));
        assert!(series.join("0001-a.patch").is_file());
        assert!(
            Plan::new(r.path(), &pins, Component::Redis, "8.0.2", &[]).is_err(),
            "pinned now"
        );
    }

    #[test]
    fn a_failed_rehearsal_leaves_no_trace() {
        let (r, _state, project) = checkout();
        let before = crate::treehash::tree_hash(r.path()).unwrap();
        // `two` was rewritten upstream: the hunk cannot apply.
        let mirror = mirror_with("8.0.2", "one\nTWO\nthree\n");
        let o = run(&project, &options(mirror.path(), false)).unwrap();
        assert_eq!((o.failed(), o.outcome().code()), (1, 1));
        let shown = o.to_string();
        assert!(shown.contains("src/f.c hunk #1 @@ -1,3 +1,4 @@"), "{shown}");
        assert!(
            shown.contains("| two") && shown.contains("| TWO"),
            "{shown}"
        );
        assert!(o.verdict().contains("1 patch(es) fail"), "{}", o.verdict());
        assert_eq!(crate::treehash::tree_hash(r.path()).unwrap(), before);
        assert!(!r.path().join("patches/redis/8.0").exists());
    }
}
