//! `cargo xtask pgo`: the training run behind a line's profile. Redis's own
//! objects are built instrumented (the release's sources, flags and sandbox,
//! plus clang's counters), the instrumented redis-server serves a training
//! load from redis-benchmark over TCP and TLS (redis-cli runs too), and
//! `llvm-profdata` merges the counters of every program into
//! `profiles/<redis>/<target>.profdata`, which every later build
//! of that line and target reads (`build::Pgo`).
//!
//! zig's clang is LLVM 22 and ships neither the profile runtime nor
//! `llvm-profdata`; both come from the distribution's LLVM of the same
//! major version (Debian: `libclang-rt-22-dev`, `llvm-22`). The training run
//! needs them; a build from a committed profile needs only zig.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{bail, Context, Result};

use crate::{
    build::{profile_path, Pgo},
    fsutil,
    project::Project,
    server::{self, Server},
    session::{BuildSession, SessionOptions},
    smoke, treehash,
};

/// What `cargo xtask pgo` is asked for.
#[derive(Debug, Clone)]
pub struct PgoOptions {
    pub session: SessionOptions,
    /// Requests per redis-benchmark test without pipelining (ten times as
    /// many with it).
    pub requests: u64,
}

/// What the training run wrote.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Relative to the checkout.
    pub profile: String,
    pub sha256: String,
    pub bytes: u64,
    /// Raw profiles merged (one per process that wrote counters: the server,
    /// each redis-benchmark and redis-cli run).
    pub raw: usize,
    /// The `llvm-profdata` that merged them.
    pub profdata: PathBuf,
}

/// One redis-benchmark run of the training load.
struct Load {
    name: &'static str,
    /// With `-P 16` and ten times the requests.
    pipelined: bool,
    args: &'static [&'static str],
}

/// The training load, each run over TCP and TLS: redis-benchmark's default
/// tests (strings, lists, sets, hashes, sorted sets, streams, MSET), also
/// pipelined, 1 KiB values, and a Lua script.
const TRAINING: &[Load] = &[
    Load {
        name: "default tests",
        pipelined: false,
        args: &["-c", "50", "-r", "100000"],
    },
    Load {
        name: "default tests, pipelined",
        pipelined: true,
        args: &["-c", "50", "-r", "100000", "-P", "16"],
    },
    Load {
        name: "1 KiB values",
        pipelined: false,
        args: &[
            "-c",
            "10",
            "-r",
            "100000",
            "-d",
            "1024",
            "-t",
            "set,get,lpush,lrange_100",
        ],
    },
    Load {
        name: "Lua",
        pipelined: false,
        args: &[
            "-c",
            "10",
            "-r",
            "10000",
            "eval",
            "redis.call('incr',KEYS[1]); return redis.call('get',KEYS[1])",
            "1",
            "counter:__rand_int__",
        ],
    },
];

/// redis-cli's runs after the load: (over TLS, its arguments).
const CLI_RUNS: &[(bool, &[&str])] = &[
    (false, &["PING"]),
    (false, &["INFO"]),
    (false, &["--bigkeys"]),
    (true, &["SET", "pgo:cli", "1"]),
    (true, &["INCR", "pgo:cli"]),
];

/// LLVM's major version of zig's clang (`clang version 22.1.8` → 22).
fn llvm_major(zig: &Path) -> Result<u32> {
    let mut cmd = Command::new(zig);
    cmd.args(["cc", "--version"]);
    let out = checked(cmd, &format!("{} cc --version", zig.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("clang version "))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .with_context(|| format!("`zig cc --version` names no clang version: {text}"))
}

/// The profile runtime and `llvm-profdata` of LLVM `major`, for `arch`.
fn llvm_tools(major: u32, arch: &str) -> Result<(PathBuf, PathBuf)> {
    let runtime = PathBuf::from(format!(
        "/usr/lib/llvm-{major}/lib/clang/{major}/lib/linux/libclang_rt.profile-{arch}.a"
    ));
    let profdata = PathBuf::from(format!("/usr/bin/llvm-profdata-{major}"));
    for (file, package) in [
        (&runtime, format!("libclang-rt-{major}-dev")),
        (&profdata, format!("llvm-{major}")),
    ] {
        if !file.is_file() {
            bail!(
                "{} is missing: the training run needs LLVM {major}'s, as zig's clang is \
                 LLVM {major}\nfix: apt-get install {package}",
                file.display()
            );
        }
    }
    Ok((runtime, profdata))
}

/// Build the line instrumented, train it, and write its profile into the
/// checkout.
pub fn train(project: &Project, opts: &PgoOptions) -> Result<Trained> {
    let pins = project.pins()?;
    let target = pins.target(opts.session.target.as_deref())?;
    if target.arch() != std::env::consts::ARCH || target.libc() != "glibc" {
        let here = pins
            .targets
            .iter()
            .filter(|t| t.arch() == std::env::consts::ARCH && t.libc() == "glibc")
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>();
        bail!(
            "{}: a profile is trained by running the instrumented server here, with the \
             distribution's profile runtime, which is for {} and glibc\n\
             fix: train one of [{}] (--target NAME); the others build without a profile",
            target.name,
            std::env::consts::ARCH,
            here.join(", ")
        );
    }
    let mut session = BuildSession::open(project, &opts.session)?;
    let target = session.toolchain.target.clone();
    let major = llvm_major(&session.toolchain.zig())?;
    let (runtime, profdata) = llvm_tools(major, target.arch())?;
    session.flags.pgo = Pgo::Generate {
        runtime_sha256: treehash::sha256_file(&runtime)?,
        runtime,
    };
    let series = session.series.clone();
    let (_, built) = session.build(&series)?;
    let profile = profile_path(&session.redis, &target);
    eprintln!(
        "pgo: training the instrumented {} ({})",
        session.redis.id(),
        built.dir.display()
    );

    let work = project.scratch().join("pgo");
    if work.exists() {
        fsutil::make_writable_and_remove(&work)?;
    }
    let raw = work.join("raw");
    fs::create_dir_all(&raw).with_context(|| format!("creating {}", raw.display()))?;
    run_training(&built.bin, &work, &raw, opts.requests)?;

    let mut raws: Vec<PathBuf> = fs::read_dir(&raw)
        .with_context(|| format!("reading {}", raw.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "profraw"))
        .collect();
    raws.sort();
    if raws.is_empty() {
        bail!(
            "the instrumented redis-server wrote no counters into {}; see {}",
            raw.display(),
            work.join("server/redis.log").display()
        );
    }
    let dest = project.root.join(&profile);
    let merged = work.join("merged.profdata");
    let mut merge = Command::new(&profdata);
    merge.arg("merge").arg("-o").arg(&merged).args(&raws);
    checked(merge, &format!("{} merge", profdata.display()))?;
    let bytes = fs::read(&merged).with_context(|| format!("reading {}", merged.display()))?;
    fsutil::write_atomic(&dest, &bytes)?;
    Ok(Trained {
        sha256: treehash::sha256_bytes(&bytes),
        bytes: bytes.len() as u64,
        raw: raws.len(),
        profile,
        profdata,
    })
}

/// The training load against the instrumented server in `bin`; its counters
/// go to `raw` when it shuts down.
fn run_training(bin: &Path, work: &Path, raw: &Path, requests: u64) -> Result<()> {
    let tls = smoke::make_certificates(&work.join("tls"))?;
    let (port, tls_port) = (server::free_port()?, server::free_port()?);
    let mut args = server::loopback_args(port, &["--appendonly", "no"]);
    args.extend(tls.server_args(tls_port));
    // One file a process; a reused process id merges into its file (%m).
    let pattern = raw.join("%p-%m.profraw");
    let mut server = Server::spawn_env(
        &bin.join("redis-server"),
        &work.join("server"),
        port,
        &args,
        &[("LLVM_PROFILE_FILE", pattern.as_path())],
    )?;
    server.wait_ready(Duration::from_secs(30))?;
    let benchmark = bin.join("redis-benchmark");
    for secure in [false, true] {
        for load in TRAINING {
            let mut cmd = Command::new(&benchmark);
            cmd.args(["-h", "127.0.0.1", "-q"]);
            if secure {
                cmd.args(["-p", &tls_port.to_string()])
                    .args(tls.client_args());
            } else {
                cmd.args(["-p", &port.to_string()]);
            }
            let n = if load.pipelined {
                requests * 10
            } else {
                requests
            };
            cmd.args(["-n", &n.to_string()])
                .args(load.args)
                .env("LLVM_PROFILE_FILE", &pattern);
            let name = load.name;
            eprintln!("  pgo: {name} over {}", if secure { "TLS" } else { "TCP" });
            checked(cmd, &format!("redis-benchmark ({name})"))?;
        }
    }
    // redis-cli, whose code the build shares with redis-benchmark: without
    // its counters, the profile would hold redis-benchmark's `main` only.
    let cli = bin.join("redis-cli");
    for (secure, words) in CLI_RUNS {
        let mut cmd = Command::new(&cli);
        cmd.args(["-h", "127.0.0.1"]);
        if *secure {
            cmd.args(["-p", &tls_port.to_string()])
                .args(tls.client_args());
        } else {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(*words).env("LLVM_PROFILE_FILE", &pattern);
        checked(cmd, &format!("redis-cli {}", words.join(" ")))?;
    }
    // The counters are written when the process exits normally.
    let _ = server::command(port, &["SHUTDOWN", "NOSAVE"], Duration::from_secs(10));
    for _ in 0..600 {
        if server.child.try_wait()?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!(
        "the instrumented redis-server did not exit within 60 s of SHUTDOWN; log:\n{}",
        server.log_tail()
    )
}

/// Run `cmd` (`what`, for the errors) to its end; its output when it
/// succeeded, its stderr in the error when it did not.
fn checked(mut cmd: Command, what: &str) -> Result<std::process::Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}
