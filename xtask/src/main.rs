//! `cargo xtask`: portable Redis releases. This file only dispatches; each
//! subcommand lives in its own module (see ARCHITECTURE.md).

use std::process::ExitCode;

use clap::Parser;

use xtask::{
    dist,
    flags::{Cli, Command},
    patch_cmd, project, upgrade, vendor, verify,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let project = project::Project::discover(cli.state)?;
    match cli.command {
        Command::Dist(args) => {
            let opts = dist::DistOptions::from_args(&project, args)?;
            let release = dist::run(&project, &opts)?;
            println!("{}", release.tarball.display());
            Ok(0)
        }
        Command::Vendor(args) => {
            vendor::run(&project, &args.vendor_options(), args.redis.as_deref())?;
            Ok(0)
        }
        Command::Patch(args) => patch_cmd::run(&project, &args),
        Command::Verify(args) => {
            let policy = verify::Policy {
                glibc: args.glibc.clone(),
            };
            Ok(verify::run(&args.files, args.json, &policy)? as u8)
        }
        Command::Hash { dir } => {
            vendor::hash(&dir)?;
            Ok(0)
        }
        Command::Upgrade(args) => {
            let outcome = upgrade::run(&project, &upgrade::UpgradeOptions::from(args))?;
            print!("{outcome}");
            println!("{}", outcome.verdict());
            Ok(outcome.exit_code())
        }
    }
}
