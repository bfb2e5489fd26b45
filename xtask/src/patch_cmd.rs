//! `cargo xtask patch [--check]`: apply a Redis line's series to a fresh copy
//! of its pinned tree, or rehearse it and report every hunk.

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    patch::{self, PatchedTree, Rehearsal, Series},
    project::Project,
    security, treehash,
    vendor::{self, VendorOptions},
};

/// What `cargo xtask patch` applies or rehearses.
#[derive(Debug, Clone)]
pub struct PatchOptions {
    pub redis: Option<String>,
    pub vendor: VendorOptions,
    /// Rehearse only, change nothing.
    pub check: bool,
    /// A series folder instead of the pin's.
    pub series: Option<PathBuf>,
}

/// What `cargo xtask patch` did.
pub enum PatchOutcome {
    /// `--check`: every hunk's fate.
    Rehearsed(Rehearsal),
    /// The patched copy of the tree.
    Applied(PatchedTree),
}

pub fn run(project: &Project, args: &PatchOptions) -> Result<PatchOutcome> {
    let pins = project.pins()?;
    let pin = pins.redis(args.redis.as_deref())?;
    let opts = &args.vendor;
    let (series, source) = {
        let _lock = project.lock()?;
        let mut series = security::series(project, pin, opts)?;
        if let Some(dir) = &args.series {
            series = Series {
                security: series.security,
                ..Series::load(dir)?
            };
        }
        (series, vendor::vendor(project, pin, opts)?)
    };
    let series_dir = &series.dir;
    if args.check {
        let rehearsal = patch::Rehearsal {
            series: match &series.security {
                Some(q) => format!("{} + {}", series_dir.display(), q.archive),
                None => series_dir.display().to_string(),
            },
            against: format!("{} {}", pin.name, pin.version),
            reports: patch::check_series(
                &source.dir,
                &series,
                &project.scratch().join("patch-check"),
            )?,
        };
        return Ok(PatchOutcome::Rehearsed(rehearsal));
    }
    let fingerprint: Vec<String> = series
        .fingerprint()
        .into_iter()
        .map(|(n, h)| format!("{n} {h}"))
        .collect();
    let key =
        treehash::sha256_bytes(format!("{}\n{}", pin.tree, fingerprint.join("\n")).as_bytes());
    let dest = project
        .state
        .join("patched")
        .join(format!("{}-{}", pin.id(), &key[..16]));
    Ok(PatchOutcome::Applied(patch::apply_series(
        &source.dir,
        &series,
        &dest,
    )?))
}
