//! `cargo xtask verify [--json] [--policy FILE] [--against DIR]... FILE...`:
//! the command over the `elfcheck` crate. It turns the arguments into
//! elfcheck's inputs (the policy file, the OpenSSL pin, the pinned zig's ABI
//! list) and prints the report; exit 0 when every file passes, 1 on
//! violations, 2 when an input is unusable.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use elfcheck::*;

use crate::{
    pins::{Target, PINS_FILE},
    project::Project,
};

/// The policy at `path`, or the default target's (the first `[[target]]` of
/// vendor/sources.toml).
pub fn load_policy(project: &Project, path: Option<&Path>) -> Result<Policy> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => project.root.join(&project.pins()?.target(None)?.policy),
    };
    Policy::load(&path).context(
        "a policy is a file like policy/x86_64-linux-gnu.2.11.toml (README.md, \"verify\", \
         lists its keys)",
    )
}

/// The policy of `target`, which must be for the target's zig triple.
pub fn target_policy(project: &Project, target: &Target) -> Result<Policy> {
    let policy = load_policy(project, Some(&project.root.join(&target.policy)))
        .with_context(|| format!("the `policy` of [[target]] {} in {PINS_FILE}", target.name))?;
    let wanted = policy.zig_target();
    if target.zig != wanted {
        anyhow::bail!(
            "[[target]] {} in {PINS_FILE} compiles for {} but its policy {} is for {wanted}: \
             set its `zig` to {wanted}, or point its `policy` at a policy for {}",
            target.name,
            target.zig,
            target.policy,
            target.zig
        );
    }
    Ok(policy)
}

/// What `cargo xtask verify` checks with.
pub struct Inputs {
    pub policy: Policy,
    pub abilists: PathBuf,
    pub extras: Extras,
}

/// What `cargo xtask verify` was asked to check with; `None` takes the
/// default.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub policy: Option<PathBuf>,
    /// Overrides the policy's glibc floor.
    pub glibc: Option<String>,
    /// The OpenSSL version that must be linked in, or `none`.
    pub openssl: Option<String>,
    pub abilists: Option<PathBuf>,
    /// Copies of hosts' library folders.
    pub against: Vec<PathBuf>,
    /// Linker maps.
    pub map: Vec<PathBuf>,
}

/// `cargo xtask verify`'s inputs: the policy (`--glibc` overrides its
/// floor), the OpenSSL pin and the pinned zig's ABI list unless given.
pub fn inputs(project: &Project, args: &VerifyOptions) -> Result<Inputs> {
    let pins = || project.pins();
    let mut policy = load_policy(project, args.policy.as_deref())?;
    if let Some(glibc) = &args.glibc {
        let glibc: GlibcVersion = glibc
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--glibc: {e}"))?;
        if policy.is_static() {
            anyhow::bail!(
                "--glibc {glibc}: policy {} is for static binaries, which need no glibc; drop --glibc",
                policy.name
            );
        }
        if Some(glibc) != policy.glibc {
            // The hash stays the file's; the name says what differs from it.
            policy.glibc = Some(glibc);
            policy.name = format!("{} with --glibc {glibc}", policy.name);
        }
    }
    policy.openssl = match args.openssl.as_deref() {
        Some("none") => None,
        Some(v) => Some(v.to_string()),
        None => Some(pins()?.openssl.version.clone()),
    };
    let abilists = match &args.abilists {
        Some(p) => p.clone(),
        None => {
            let pins = pins()?;
            crate::toolchain::provision(project, &pins.toolchain, pins.target(None)?, None)?
                .abilists()
        }
    };
    Ok(Inputs {
        policy,
        abilists,
        extras: Extras {
            hosts: args.against.clone(),
            maps: args.map.clone(),
        },
    })
}

/// `cargo xtask verify`: the report, printed.
pub fn run(files: &[PathBuf], json: bool, inputs: &Inputs) -> Result<VerifyReport> {
    let abi = GlibcAbi::load(&inputs.abilists, &inputs.policy).context(
        "verify cannot run without zig's ABI list: provision the pinned zig \
         (`cargo xtask dist`) or pass --abilists FILE",
    )?;
    let report = check(files, &inputs.policy, &abi, &inputs.extras).context("verify cannot run")?;
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.human());
    }
    Ok(report)
}
