//! A series (our patches, then a distribution's queue) applied in order to a
//! fresh copy of a pinned tree, or rehearsed in a scratch copy.

use super::*;

/// A series folder: `series` lists patch file names in order; a
/// distribution's security queue may follow it.
#[derive(Debug, Clone)]
pub struct Series {
    pub dir: PathBuf,
    pub patches: Vec<Patch>,
    /// CVE patches of a distribution's package, applied after `patches`.
    pub security: Option<Queue>,
}

/// The patches taken from a distribution's patch archive.
#[derive(Debug, Clone)]
pub struct Queue {
    /// The archive's file name (`redis_7.0.15-1~deb12u10.debian.tar.xz`).
    pub archive: String,
    /// The package version it belongs to (`5:7.0.15-1~deb12u10`).
    pub debian: String,
    /// Folder of the patches inside the archive (`debian/patches`).
    pub folder: String,
    pub patches: Vec<Patch>,
}

impl Series {
    pub fn load(dir: &Path) -> Result<Series> {
        let list = dir.join("series");
        let text = fs::read_to_string(&list).with_context(|| {
            format!(
                "reading {}: a patch folder needs a `series` file",
                list.display()
            )
        })?;
        let mut patches = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let name = line.split('#').next().unwrap_or("").trim();
            if name.is_empty() {
                continue;
            }
            let path = dir.join(name);
            let body = fs::read_to_string(&path).with_context(|| {
                format!(
                    "{}:{}: patch `{name}` is listed but {} cannot be read",
                    list.display(),
                    n + 1,
                    path.display()
                )
            })?;
            patches.push(parse(name, &body)?);
        }
        Ok(Series {
            dir: dir.to_path_buf(),
            patches,
            security: None,
        })
    }

    /// No patches at all (a pin without a series), anchored at `dir`.
    pub fn empty(dir: &Path) -> Series {
        Series {
            dir: dir.to_path_buf(),
            patches: Vec::new(),
            security: None,
        }
    }

    /// The patches for `target`: those whose `Only-for:` words it all has.
    pub fn for_target(&self, target: &Target) -> Series {
        let facets = target.facets();
        Series {
            patches: self
                .patches
                .iter()
                .filter(|p| p.only_for.iter().all(|w| facets.contains(&w.as_str())))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// Upstream as released, built for the target: the portability patches
    /// only (`Kind: portability`), no fixes and no security queue.
    pub fn portability_only(&self) -> Series {
        Series {
            dir: self.dir.clone(),
            patches: self
                .patches
                .iter()
                .filter(|p| p.kind.as_deref() == Some("portability"))
                .cloned()
                .collect(),
            security: None,
        }
    }

    /// Every patch in the order it is applied, with where it comes from
    /// (a file of the series folder, or a member of the queue's archive).
    pub fn applied(&self) -> Vec<(&Patch, String)> {
        let mut out: Vec<(&Patch, String)> = self
            .patches
            .iter()
            .map(|p| (p, self.dir.join(&p.name).display().to_string()))
            .collect();
        if let Some(q) = &self.security {
            out.extend(q.patches.iter().map(|p| (p, q.location(&p.name))));
        }
        out
    }

    /// `(name, sha256)` of every patch, for cache keys; a security patch is
    /// named with its archive (`redis_….debian.tar.xz/CVE-….patch`).
    pub fn fingerprint(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .patches
            .iter()
            .map(|p| (p.name.clone(), p.sha256.clone()))
            .collect();
        if let Some(q) = &self.security {
            out.extend(q.patches.iter().map(|p| {
                let mut name = format!("{}/{}", q.archive, p.name);
                for f in &p.left_out {
                    name.push_str(&format!(" without {f}"));
                }
                (name, p.sha256.clone())
            }));
        }
        out
    }
}

impl Queue {
    /// Where a patch of the queue is: `archive: folder/name`.
    pub fn location(&self, name: &str) -> String {
        format!("{}: {}/{name}", self.archive, self.folder)
    }

    /// The same as a reference: `archive#folder/name`.
    pub fn reference(&self, name: &str) -> String {
        format!("{}#{}/{name}", self.archive, self.folder)
    }
}

/// A pinned tree with its series applied.
#[derive(Debug, Clone)]
pub struct PatchedTree {
    pub dir: PathBuf,
    pub reports: Vec<PatchReport>,
}

/// Copy `pristine` to `dest` and apply `series`; on any failure nothing is left
/// at `dest` and the error holds the failing patch's report.
pub fn apply_series(pristine: &Path, series: &Series, dest: &Path) -> Result<PatchedTree> {
    let staging = fsutil::Staging::beside(dest)?;
    fsutil::copy_tree(pristine, staging.path())?;
    let mut reports = Vec::new();
    for (patch, location) in series.applied() {
        let report = apply_patch(staging.path(), patch, true)?;
        if report.failed() {
            bail!(
                "patch {location} does not apply to {} (nothing was changed):\n{report}",
                pristine.display()
            );
        }
        reports.push(report);
    }
    staging.commit(dest)?;
    Ok(PatchedTree {
        dir: dest.to_path_buf(),
        reports,
    })
}

/// The outcome of a rehearsal (`cargo xtask patch --check`, `cargo xtask
/// upgrade`): every patch of a series tried in order against a tree.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    /// The series, as the user knows it (`patches/redis/8.0`).
    pub series: String,
    /// What it was tried against (`redis 8.0.2`).
    pub against: String,
    pub reports: Vec<PatchReport>,
}

impl Rehearsal {
    pub fn failed(&self) -> usize {
        self.reports.iter().filter(|r| r.failed()).count()
    }
}

impl fmt::Display for Rehearsal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "series {} against {}:", self.series, self.against)?;
        for r in &self.reports {
            write!(f, "{r}")?;
        }
        let failed = self.failed();
        writeln!(
            f,
            "{} patches: {} apply, {failed} fail",
            self.reports.len(),
            self.reports.len() - failed
        )
    }
}

/// Rehearse `series` on a scratch copy of `pristine`: every patch is tried in
/// order on the result of the ones before; nothing outside scratch changes.
pub fn check_series(pristine: &Path, series: &Series, scratch: &Path) -> Result<Vec<PatchReport>> {
    let staging = fsutil::Staging::beside(scratch)?;
    fsutil::copy_tree(pristine, staging.path())?;
    let mut reports = Vec::new();
    for (patch, _) in series.applied() {
        // Write the hunks that apply, so later patches see them.
        reports.push(apply_patch(staging.path(), patch, true)?);
    }
    Ok(reports)
}
