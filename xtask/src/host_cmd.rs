//! `cargo xtask host build` and `cargo xtask host check`: the glibc 2.11
//! target host (stage `glibc`) and the release run through its loader
//! (`host`).

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{
    dist,
    flags::{HostBuildArgs, HostCheckArgs},
    glibc::{self, HostOptions},
    host::{self, Loader},
    pins::Pins,
    project::Project,
    sandbox::SandboxKind,
    vendor::VendorOptions,
};

fn jobs(j: Option<usize>) -> usize {
    j.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// `host build`: the host folder, printed on stdout.
pub fn build(project: &Project, args: &HostBuildArgs) -> Result<u8> {
    let built = glibc::build(
        project,
        &HostOptions {
            sandbox: args.sandbox,
            jobs: jobs(args.jobs),
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
    Ok(0)
}

/// `host check`: the report; exit 1 when it failed.
pub fn check(project: &Project, args: &HostCheckArgs) -> Result<u8> {
    let vendor = args.source.vendor_options();
    let host_dir = match &args.host {
        Some(h) => std::fs::canonicalize(h).with_context(|| format!("--host {}", h.display()))?,
        None => {
            glibc::build(
                project,
                &HostOptions {
                    sandbox: SandboxKind::Bwrap,
                    jobs: jobs(None),
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
        None => Pins::load(&project.root)?.redis(None)?.line(),
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
    Ok(u8::from(!report.passed))
}
