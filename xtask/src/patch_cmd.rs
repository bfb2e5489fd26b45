//! `cargo xtask patch [--check]`: apply a Redis line's series to a fresh copy
//! of its pinned tree, or rehearse it and report every hunk.

use anyhow::Result;

use crate::{
    flags::PatchArgs,
    patch::{self, Series},
    pins::Pins,
    project::Project,
    security, treehash, vendor,
};

pub fn run(project: &Project, args: &PatchArgs) -> Result<u8> {
    let pins = Pins::load(&project.root)?;
    let pin = pins.redis(args.source.redis.as_deref())?;
    let opts = args.source.vendor_options();
    let (series, source) = {
        let _lock = project.lock()?;
        let mut series = security::series(project, pin, &opts)?;
        if let Some(dir) = &args.series {
            series = Series {
                security: series.security,
                ..Series::load(dir)?
            };
        }
        (series, vendor::vendor(project, pin, &opts)?)
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
        print!("{rehearsal}");
        return Ok(if rehearsal.failed() > 0 { 1 } else { 0 });
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
    let patched = patch::apply_series(&source.dir, &series, &dest)?;
    for r in &patched.reports {
        println!("{}: {}", r.patch, r.status());
    }
    println!("{}", patched.dir.display());
    Ok(0)
}
