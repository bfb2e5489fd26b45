//! The commands on old target hosts: `host build` (the glibc 2.11 host,
//! module `glibc`) and `host check` (the release run through its loader,
//! module `host`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::{
    flags::{HostBuildArgs, HostCheckArgs, HostCommand},
    Outcome,
};
use crate::{
    dist,
    glibc::{self, HostOptions},
    host::{self, Loader},
    project::Project,
    sandbox::SandboxKind,
    vendor::VendorOptions,
};

impl HostCommand {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        match self {
            HostCommand::Build(args) => build(project, &args),
            HostCommand::Check(args) => check(project, &args),
        }
    }
}

/// `host build`: the host folder, printed on stdout.
fn build(project: &Project, args: &HostBuildArgs) -> Result<Outcome> {
    let built = glibc::build(
        project,
        &HostOptions {
            sandbox: args.sandbox,
            jobs: args.jobs.unwrap_or_else(crate::run::cpus),
            vendor: VendorOptions {
                mirror: args.mirror.clone(),
                offline: args.offline,
            },
        },
    )?;
    eprintln!(
        "host {}: {} (libc.so.6 defines up to GLIBC_{}, memcpy as {}; {})",
        built.name,
        if built.built { "built" } else { "cached" },
        built.record.highest_version,
        built.record.memcpy.join(", "),
        built.dir.join("host.json").display()
    );
    println!("{}", built.dir.display());
    Ok(Outcome::Pass)
}

/// `host check`: the report; exit 1 when it failed.
fn check(project: &Project, args: &HostCheckArgs) -> Result<Outcome> {
    let vendor = args.source.vendor_options();
    let host_dir = match &args.host {
        Some(h) => std::fs::canonicalize(h).with_context(|| format!("--host {}", h.display()))?,
        None => {
            glibc::build(
                project,
                &HostOptions {
                    sandbox: SandboxKind::Bwrap,
                    jobs: crate::run::cpus(),
                    vendor: vendor.clone(),
                },
            )?
            .dir
        }
    };
    let loader = Loader::of(&host_dir, &[])?;
    let bin = match &args.bin {
        Some(b) => std::fs::canonicalize(b).with_context(|| format!("--bin {}", b.display()))?,
        None => {
            dist::packaged(
                project,
                args.source.redis.as_deref(),
                &vendor,
                "host-check-release",
            )?
            .1
        }
    };
    let line = match &args.source.redis {
        Some(l) => l.clone(),
        None => project.pins()?.redis(None)?.line(),
    };
    let work: PathBuf = args
        .work
        .clone()
        .unwrap_or_else(|| project.state.join("host-check").join(line));
    let report = host::check(&host_dir, &loader, &bin, &work)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(Outcome::of(report.passed))
}
