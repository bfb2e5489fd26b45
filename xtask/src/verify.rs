//! `cargo xtask verify [--json] [--against DIR]... FILE...`: the command
//! over the `elfcheck` crate. It turns the arguments into elfcheck's options
//! (the OpenSSL pin, the pinned zig's ABI list) and prints the report; exit 0
//! when every file passes, 1 on violations, 2 when an input is unusable.

use anyhow::{Context, Result};
pub use elfcheck::*;

use crate::{flags::VerifyArgs, pins::Pins, project::Project};
use std::path::PathBuf;

/// `cargo xtask verify`'s options: the OpenSSL pin and the pinned zig's
/// ABI list unless given.
pub fn options(project: &Project, args: &VerifyArgs) -> Result<Options> {
    let pins = || Pins::load(&project.root);
    let openssl = match args.openssl.as_deref() {
        Some("none") => None,
        Some(v) => Some(v.to_string()),
        None => Some(pins()?.openssl.version),
    };
    let abilists = match &args.abilists {
        Some(p) => p.clone(),
        None => crate::toolchain::provision(project, &pins()?.toolchain, None)?.abilists(),
    };
    Ok(Options {
        policy: Policy {
            glibc: args.glibc.clone(),
            openssl,
            ..Policy::default()
        },
        abilists,
        hosts: args.against.clone(),
        maps: args.map.clone(),
    })
}

/// `cargo xtask verify`.
pub fn run(files: &[PathBuf], json: bool, opts: &Options) -> Result<i32> {
    let report = verify_paths(files, opts).context("verify cannot run")?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    Ok(report.exit_code())
}
