//! `cargo xtask`: portable Redis releases. This file only dispatches: each
//! command's arguments become its options in `cli`, which calls the modules
//! below it (see ARCHITECTURE.md).

use std::process::ExitCode;

use clap::Parser;

use xtask::{
    cli::{self, Cli, Command},
    project::Project,
};

fn main() -> ExitCode {
    default_sigpipe();
    let cli = Cli::parse();
    let outcome = Project::discover(cli.state).and_then(|project| {
        let project = &project;
        match cli.command {
            Command::Dist(cmd) => cmd.run(project),
            Command::Vendor(cmd) => cmd.run(project),
            Command::Patch(cmd) => cmd.run(project),
            Command::Verify(cmd) => cmd.run(project),
            Command::VerifyRelease(cmd) => cmd.run(project),
            Command::Repro(cmd) => cmd.run(project),
            Command::Hash(cmd) => cmd.run(project),
            Command::Upgrade(cmd) => cmd.run(project),
            Command::Torture(cmd) => cmd.run(project),
            Command::Audit(cmd) => cmd.run(project),
            Command::TestUpstream(cmd) => cmd.run(project),
            Command::Host(cmd) => cmd.run(project),
            Command::Bench(cmd) => cmd.run(project),
            Command::Pgo(cmd) => cmd.run(project),
        }
    });
    cli::finish(outcome).into()
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
