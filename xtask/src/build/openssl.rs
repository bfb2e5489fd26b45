//! The OpenSSL step: a static libssl and libcrypto configured for the target,
//! announcing its generated headers as soon as they exist so Redis can start.

use super::*;

/// OpenSSL's Configure options. Static libraries only (`no-shared`), the
/// providers built in (`no-module`: a static binary loads no provider
/// modules), without the legacy provider's algorithms, which Redis does not
/// need (`no-legacy`), and without the protocols and formats Redis never
/// uses (`no-dtls no-quic no-cms no-cmp`): their code is not built, so their
/// CVEs do not apply (vendor/advisories.toml says which).
/// They follow the target's own `Configure` target (`[[target]]`'s `openssl`).
pub const OPENSSL_OPTIONS: [&str; 11] = [
    "no-shared",
    "no-module",
    "no-legacy",
    "no-dtls",
    "no-quic",
    "no-cms",
    "no-cmp",
    "no-tests",
    "-fPIC",
    "--openssldir=/etc/ssl",
    "--libdir=lib",
];

/// The OpenSSL step before it runs: its key and output folder.
pub(super) struct OpensslStep<'a> {
    cx: &'a BuildContext<'a>,
    pin: &'a SourcePin,
    /// Applied to the vendored tree before the build.
    series: &'a Series,
    /// The context's flags with OpenSSL's own release date, without the
    /// Redis line's make variables and profile: every Redis line then links
    /// the same OpenSSL build.
    flags: BuildFlags,
    pub(super) step: CachedStep,
}

impl<'a> OpensslStep<'a> {
    pub(super) fn new(
        cx: &'a BuildContext<'a>,
        pin: &'a SourcePin,
        series: &'a Series,
    ) -> Result<OpensslStep<'a>> {
        let flags = BuildFlags {
            source_date_epoch: pin.release_epoch()?,
            line_make: Vec::new(),
            pgo: Pgo::Off,
            ..cx.flags.clone()
        };
        let step = BuildContext {
            flags: &flags,
            ..*cx
        }
        .step(
            "openssl",
            pin,
            serde_json::json!({
                "tree": pin.tree,
                "version": pin.version,
                "patches": series.fingerprint(),
            }),
        );
        Ok(OpensslStep {
            cx,
            pin,
            series,
            flags,
            step,
        })
    }

    fn prefix(&self) -> PathBuf {
        self.step.out.join("prefix")
    }

    /// The step's output, recorded in the build's step log.
    fn built(&self, cached: bool) -> BuiltOpenssl {
        self.cx.record(&self.step, cached);
        BuiltOpenssl {
            key: self.step.key.clone(),
            dir: self.step.out.clone(),
            prefix: self.prefix(),
            cached,
        }
    }

    pub(super) fn cached(&self) -> Option<BuiltOpenssl> {
        self.step.cached(|_| {
            self.prefix()
                .join("lib/libcrypto.a")
                .is_file()
                .then(|| self.built(true))
        })
    }

    /// Configure, build and install static OpenSSL from `tree` with the
    /// step's series applied. With `early`,
    /// its public headers are copied out as soon as they are generated, before
    /// the libraries are built.
    pub(super) fn build(&self, tree: &Path, early: Option<EarlyHeaders>) -> Result<BuiltOpenssl> {
        let pin = self.pin;
        let cx = &BuildContext {
            flags: &self.flags,
            ..*self.cx
        };
        let staging = self.step.stage()?;
        let src = staging.path().join("src");
        patch::apply_series(tree, self.series, &src)?;
        fs::create_dir_all(staging.path().join("prefix"))?;
        let logs = self.step.own_logs(cx.project);

        let mut sb = cx.sandbox(staging.path())?;
        let l = BuildContext::layout(&mut sb, &src, &staging.path().join("prefix"), true);
        let mut configure = vec!["perl".to_string(), "./Configure".into()];
        configure.extend(cx.flags.openssl_configure.iter().cloned());
        configure.push(format!("--prefix={}", l.openssl.display()));
        configure.extend(cx.flags.openssl_cflags.iter().cloned());
        configure.push(format!(
            "-ffile-prefix-map={}={}",
            l.src.display(),
            pin.id()
        ));
        configure.extend(["CC=cc", "AR=ar", "RANLIB=ranlib"].map(String::from));
        let jobs = format!("-j{}", cx.flags.jobs);

        cx.steps.logged(
            &format!("{} configure", pin.id()),
            sb.command(&configure),
            &logs.join("configure.log"),
        )?;
        cx.steps.logged(
            &format!("{} headers", pin.id()),
            sb.command(&["make".into(), jobs.clone(), "build_generated".into()]),
            &logs.join("build.log"),
        )?;
        if let Some(early) = early {
            fsutil::copy_tree(&src.join("include"), &early.dest)?;
            // The receiver may have stopped waiting; OpenSSL goes on regardless.
            let _ = early.ready.send(());
        }
        cx.steps.logged(
            &format!("{} build", pin.id()),
            sb.command(&["make".into(), jobs, "build_libs".into()]),
            &logs.join("build.log"),
        )?;
        cx.steps.logged(
            &format!("{} install", pin.id()),
            sb.command(&["make".into(), "install_dev".into()]),
            &logs.join("install.log"),
        )?;
        // Installed files get OpenSSL's release date: a Redis compiled
        // against the same headers before they were installed stays newer
        // than them, so its link step recompiles nothing.
        fsutil::set_mtimes(&staging.path().join("prefix"), cx.flags.source_date_epoch)?;
        collect_licenses(&src, pin, &staging.path().join("licenses"))?;
        fsutil::make_writable_and_remove(&src)?;
        self.step.commit(staging, None)?;
        Ok(self.built(false))
    }
}

/// Where OpenSSL's generated public headers go (`dest` becomes an
/// `include/` folder) and whom to tell when they are there.
pub(super) struct EarlyHeaders {
    pub(super) dest: PathBuf,
    pub(super) ready: std::sync::mpsc::Sender<()>,
}
