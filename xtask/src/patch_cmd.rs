//! `cargo xtask patch [--check]`: apply a Redis line's series to a fresh copy
//! of its pinned tree, or rehearse it and report every hunk.

use anyhow::{Context, Result};

use crate::{
    flags::PatchArgs,
    patch::{self, Series},
    pins::Pins,
    project::Project,
    treehash, vendor,
};

pub fn run(project: &Project, args: &PatchArgs) -> Result<u8> {
    let pins = Pins::load(&project.root)?;
    let pin = pins.redis(args.source.redis.as_deref())?;
    let series_dir = match &args.series {
        Some(d) => d.clone(),
        None => pin
            .patches_dir(&project.root)
            .with_context(|| format!("the {} pin names no patch series", pin.id()))?,
    };
    let series = Series::load(&series_dir)?;
    let source = {
        let _lock = project.lock()?;
        vendor::vendor(project, pin, &args.source.vendor_options())?
    };
    if args.check {
        let rehearsal = patch::Rehearsal {
            series: series_dir.display().to_string(),
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
