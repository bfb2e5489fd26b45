//! The opening every zig build of a Redis line shares (`dist`, the upstream
//! build of `torture` and of the CVE reproductions, `bench`'s timed builds):
//! the state lock, the sandbox checked, the pinned (or given) zig, the line's
//! build flags (its profile for the target included) and both patch series.

use std::path::PathBuf;

use anyhow::Result;

use crate::{
    build::{self, BuildContext, BuildFlags, BuiltOpenssl, BuiltRedis, Pgo},
    patch::Series,
    pins::{Pins, SourcePin},
    project::{Project, StateLock},
    run::StepLog,
    sandbox::{Sandbox, SandboxKind},
    security,
    toolchain::{self, Toolchain},
    vendor::VendorOptions,
};

/// What a build session is opened with.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Redis line or version; the first pin if unset.
    pub redis: Option<String>,
    /// The target's name (`[[target]]` in vendor/sources.toml); the first if
    /// unset.
    pub target: Option<String>,
    pub sandbox: SandboxKind,
    /// A zig binary instead of the pinned wheel.
    pub zig: Option<PathBuf>,
    pub jobs: usize,
    pub vendor: VendorOptions,
}

impl SessionOptions {
    /// The defaults: a line, sandboxed, the pinned zig, a job per CPU, every
    /// origin.
    pub fn new(redis: Option<String>) -> SessionOptions {
        SessionOptions {
            redis,
            target: None,
            sandbox: SandboxKind::Bwrap,
            zig: None,
            jobs: crate::run::cpus(),
            vendor: VendorOptions::default(),
        }
    }
}

/// An opened build: the state folder is this process's while it lives.
pub struct BuildSession<'a> {
    pub project: &'a Project,
    pub pins: &'a Pins,
    /// The Redis line's pin.
    pub redis: SourcePin,
    pub toolchain: Toolchain,
    pub flags: BuildFlags,
    /// The Redis line's series, its security queue included.
    pub series: Series,
    pub openssl_series: Series,
    pub vendor: VendorOptions,
    /// The build steps, built or cached, and the commands they ran.
    pub steps: StepLog,
    _lock: StateLock,
}

impl<'a> BuildSession<'a> {
    /// Lock the state, check the sandbox, provision the toolchain, set the
    /// flags (SOURCE_DATE_EPOCH from the Redis pin) and read both series.
    pub fn open(project: &'a Project, opts: &SessionOptions) -> Result<BuildSession<'a>> {
        let pins = project.pins()?;
        let redis = pins.redis(opts.redis.as_deref())?.clone();
        let target = pins.target(opts.target.as_deref())?;
        let lock = project.lock()?;
        Sandbox::preflight(opts.sandbox)?;
        // A target whose policy disagrees fails here, before any build.
        crate::verify::target_policy(project, target)?;
        let toolchain =
            toolchain::provision(project, &pins.toolchain, target, opts.zig.as_deref())?;
        let mut flags = BuildFlags::new(
            target,
            &redis.make,
            opts.sandbox,
            redis.release_epoch()?,
            opts.jobs,
        );
        // The line's profile for the target, when the repository has one.
        flags.pgo = Pgo::from_checkout(&project.root, &redis, target)?;
        let series = security::series(project, &redis, &opts.vendor)?.for_target(target);
        let openssl_series =
            security::series(project, &pins.openssl, &opts.vendor)?.for_target(target);
        Ok(BuildSession {
            project,
            pins,
            redis,
            toolchain,
            flags,
            series,
            openssl_series,
            vendor: opts.vendor.clone(),
            steps: StepLog::default(),
            _lock: lock,
        })
    }

    /// Where and how the build steps run.
    pub fn context(&self) -> BuildContext<'_> {
        BuildContext {
            project: self.project,
            toolchain: &self.toolchain,
            flags: &self.flags,
            steps: &self.steps,
        }
    }

    /// OpenSSL and Redis built with `series` (the line's, or a part of it
    /// such as its portability patches), each cached by its inputs.
    pub fn build(&self, series: &Series) -> Result<(BuiltOpenssl, BuiltRedis)> {
        build::openssl_and_redis(
            &self.context(),
            self.pins,
            &self.openssl_series,
            &self.redis,
            series,
            &self.vendor,
        )
    }
}
