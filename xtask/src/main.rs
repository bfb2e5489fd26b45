//! `cargo xtask`: portable Redis releases. This file only dispatches; each
//! subcommand lives in its own module (see ARCHITECTURE.md).

use std::process::ExitCode;

use clap::Parser;

use xtask::{
    audit, bench, dist,
    flags::{Cli, Command, HostCommand, TortureCommand},
    host_cmd, patch_cmd, project, repro, security, torture, upgrade, vendor, verify,
    verify_release,
};

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A closed stdout (`cargo xtask verify --json … | head`) ends the process
/// quietly, as it ends grep, instead of a panic in `println!`: SIGPIPE gets
/// its default action back (Rust's runtime ignores it). Programs the xtask
/// starts get the default action from Rust's `Command` in any case.
fn default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: one signal's disposition set to the default, before any
    // thread is started and before any output.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let project = project::Project::discover(cli.state)?;
    match cli.command {
        Command::Dist(args) => {
            let check_upstream = args.check_upstream;
            let opts = dist::DistOptions::from_args(&project, args)?;
            let release = dist::run(&project, &opts)?;
            if check_upstream {
                let report = xtask::test_upstream::check_release(
                    &project,
                    &release,
                    opts.redis.clone(),
                    opts.vendor.clone(),
                )?;
                eprint!("{report}");
                if !report.passed {
                    eprintln!(
                        "dist: {} fails Redis's own test suite (target/test-upstream/{}/report.json): \
                         do not publish it",
                        release.tarball.display(),
                        report.line
                    );
                    return Ok(1);
                }
            }
            println!("{}", release.tarball.display());
            Ok(0)
        }
        Command::Vendor(args) => {
            vendor::run(&project, &args.vendor_options(), args.redis.as_deref())?;
            Ok(0)
        }
        Command::Patch(args) => patch_cmd::run(&project, &args),
        Command::Verify(args) => {
            let inputs = verify::inputs(&project, &args)?;
            Ok(verify::run(&args.files, args.json, &inputs)? as u8)
        }
        Command::VerifyRelease(args) => {
            let report = verify_release::run(&project, &args.dir, args.key.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.human());
            }
            Ok(if report.passed { 0 } else { 1 })
        }
        Command::Repro(args) => {
            let opts = repro::ReproOptions {
                redis: args.redis,
                work: args.work,
                mirror: args.mirror,
                keep: args.keep,
            };
            Ok(if repro::run(&project, &opts)? { 0 } else { 1 })
        }
        Command::Hash { dir } => {
            vendor::hash(&dir)?;
            Ok(0)
        }
        Command::Torture(TortureCommand::NodesConf(args)) => torture::nodes_conf(&project, &args),
        Command::Upgrade(args) if args.security => {
            let vendor = xtask::vendor::VendorOptions {
                mirror: args.mirror.clone(),
                offline: args.offline,
            };
            let r =
                security::refresh(&project, args.component, &args.version, args.write, &vendor)?;
            print!("{r}");
            let failed = r.failed();
            println!(
                "{}",
                if r.written {
                    format!("wrote the {} queue into vendor/sources.toml; record the CVEs its new patches fix in vendor/advisories.toml and check with `cargo xtask audit`", r.to)
                } else if failed > 0 {
                    format!("{failed} patch(es) fail; nothing was written: port them into our series (say which CVE each carries)")
                } else if r.from.as_deref() == Some(r.to.as_str()) {
                    "nothing to do".to_string()
                } else {
                    format!("nothing was written. To accept: `cargo xtask upgrade {} {} --security --write`", args.component, args.version)
                }
            );
            Ok(u8::from(failed > 0))
        }
        Command::Upgrade(args) => {
            let outcome = upgrade::run(&project, &upgrade::UpgradeOptions::from(args))?;
            print!("{outcome}");
            println!("{}", outcome.verdict());
            Ok(outcome.exit_code())
        }
        Command::Audit(args) => {
            let report = audit::run(
                &project,
                args.source.redis.as_deref(),
                &args.source.vendor_options(),
            )?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(if report.passed { 0 } else { 1 })
        }
        Command::TestUpstream(args) => {
            use xtask::test_upstream;
            let suites = if args.suites.is_empty() {
                test_upstream::ALL.to_vec()
            } else {
                args.suites.clone()
            };
            let report = test_upstream::run(
                &project,
                &test_upstream::Options {
                    redis: args.source.redis.clone(),
                    suites,
                    clients: args.clients,
                    vendor: args.source.vendor_options(),
                    bin: args.bin.clone(),
                },
            )?;
            print!("{report}");
            Ok(if report.passed { 0 } else { 1 })
        }
        Command::Host(HostCommand::Build(args)) => host_cmd::build(&project, &args),
        Command::Host(HostCommand::Check(args)) => host_cmd::check(&project, &args),
        Command::Bench(args) => {
            let opts = bench::BenchOptions::from_args(&project, &args);
            let report = bench::run(&project, &opts)?;
            print!("{}", report.markdown());
            Ok(if report.passed { 0 } else { 1 })
        }
    }
}
