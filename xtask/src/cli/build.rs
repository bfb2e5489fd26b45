//! The commands that build releases: dist, repro, bench, pgo, test-upstream
//! and torture.

use anyhow::{Context, Result};

use super::{
    flags::{BenchArgs, DistArgs, PgoArgs, ReproArgs, TestUpstreamArgs, TortureCommand},
    Outcome,
};
use crate::{
    bench::{self, binaries::BinaryOptions, pipeline::PipelineOptions, BenchOptions},
    dist::{self, DistOptions},
    pgo::{self, PgoOptions},
    pins::ALL_TARGETS,
    project::Project,
    repro, run,
    sandbox::SandboxKind,
    session::SessionOptions,
    test_upstream,
    torture::{self, NodesConfOptions},
};

impl DistArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        // `--target all`: every target of vendor/sources.toml, in its order.
        let targets: Vec<Option<String>> = match self.target.as_deref() {
            Some(ALL_TARGETS) => project
                .pins()?
                .targets
                .iter()
                .map(|t| Some(t.name.clone()))
                .collect(),
            other => vec![other.map(String::from)],
        };
        if self.check_upstream {
            for target in &targets {
                test_upstream::check_runs_here(project.pins()?.target(target.as_deref())?)
                    .with_context(|| {
                        if targets.len() > 1 {
                            "--target all takes in a target this machine cannot test: \
                             give --check-upstream with --target NAME for each target it runs"
                                .to_string()
                        } else {
                            "nothing was built".to_string()
                        }
                    })?;
            }
        }
        let mut outcome = Outcome::Pass;
        for target in targets {
            if self.dist_one(project, target)? != Outcome::Pass {
                outcome = Outcome::Findings;
            }
        }
        Ok(outcome)
    }

    fn dist_one(&self, project: &Project, target: Option<String>) -> Result<Outcome> {
        let opts = DistOptions {
            target,
            sandbox: self.sandbox,
            zig: self.zig.clone(),
            out: if self.out.is_absolute() {
                self.out.clone()
            } else {
                project.root.join(&self.out)
            },
            jobs: self.jobs.unwrap_or_else(run::cpus),
            allow_cve: self.allow_cve.clone(),
            sign: self.sign.clone(),
            ..DistOptions::new(
                project,
                self.source.redis.clone(),
                self.source.vendor_options(),
            )
        };
        let release = dist::run(project, &opts)?;
        if self.check_upstream {
            let report = test_upstream::check_release(
                project,
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
                return Ok(Outcome::Findings);
            }
        }
        println!("{}", release.tarball.display());
        Ok(Outcome::Pass)
    }
}

impl ReproArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let opts = repro::ReproOptions {
            redis: self.redis,
            work: self.work,
            mirror: self.mirror,
            keep: self.keep,
        };
        Ok(Outcome::of(repro::run(project, &opts)?))
    }
}

impl BenchArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let opts = BenchOptions {
            parts: if self.only.is_empty() {
                bench::ALL_PARTS.to_vec()
            } else {
                self.only
            },
            pipeline: PipelineOptions {
                redis: self.redis,
                sandbox: SandboxKind::Bwrap,
                jobs: run::cpus(),
                cold_rounds: self.build_rounds,
                noop_rounds: self.noop_rounds,
                incremental_rounds: self.build_rounds,
            },
            binaries: BinaryOptions {
                rounds: self.rounds,
                requests: self.requests,
                pipelined_requests: self.requests * 10,
                pipeline: self.pipeline,
                clients: self.clients,
            },
            out: project.root.join("target/bench"),
        };
        let report = bench::run(project, &opts)?;
        print!("{}", report.markdown());
        Ok(Outcome::of(report.passed))
    }
}

impl PgoArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let opts = PgoOptions {
            session: SessionOptions {
                target: self.target,
                jobs: self.jobs.unwrap_or_else(run::cpus),
                vendor: self.source.vendor_options(),
                ..SessionOptions::new(self.source.redis)
            },
            requests: self.requests,
        };
        let trained = pgo::train(project, &opts)?;
        println!(
            "pgo: wrote {} ({} bytes, sha256 {}, merged from {} raw profiles by {})",
            trained.profile,
            trained.bytes,
            trained.sha256,
            trained.raw,
            trained.profdata.display()
        );
        println!("  every build of this line and target reads it from now on; commit it");
        Ok(Outcome::Pass)
    }
}

impl TestUpstreamArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let opts = test_upstream::Options {
            redis: self.source.redis.clone(),
            suites: if self.suites.is_empty() {
                test_upstream::ALL.to_vec()
            } else {
                self.suites
            },
            clients: self.clients,
            vendor: self.source.vendor_options(),
            bin: self.bin,
        };
        let report = test_upstream::run(project, &opts)?;
        print!("{report}");
        Ok(Outcome::of(report.passed))
    }
}

impl TortureCommand {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        match self {
            TortureCommand::NodesConf(args) => {
                let opts = NodesConfOptions {
                    redis: args.source.redis.clone(),
                    vendor: args.source.vendor_options(),
                    random: args.random,
                    seed: args.seed,
                    stride: args.stride,
                    jobs: args.jobs.unwrap_or_else(run::cpus),
                    asan: !args.no_asan,
                    kills: args.kills,
                    steps: if args.only.is_empty() {
                        torture::ALL_STEPS.to_vec()
                    } else {
                        args.only
                    },
                    bin: args.bin,
                    json: args.json,
                };
                let report = torture::nodes_conf(project, &opts)?;
                Ok(Outcome::of(report.violations() == 0))
            }
        }
    }
}
