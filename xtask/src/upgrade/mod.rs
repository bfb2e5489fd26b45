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

mod plan;
pub use plan::*;
mod tree;
pub use tree::*;

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
mod tests;
