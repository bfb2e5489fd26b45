//! Redis's suites (`Suite`): which files each runs, the sample, the TLS
//! files; and the failures `vendor/test-upstream.toml` expects.

use super::*;

/// A part of Redis's test suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Suite {
    /// `./runtest`: every unit, type and integration test file.
    Unit,
    /// A fixed sample of `./runtest`'s files (what CI runs).
    Sample,
    /// `./runtest --tls` over the TLS, replication and auth files.
    Tls,
    /// `./runtest-moduleapi`: the module API against tests/modules.
    Moduleapi,
    /// `./runtest --single unit/cluster/…`: the cluster unit tests.
    ClusterUnit,
    /// `./runtest-cluster`: the legacy cluster suite.
    Cluster,
}

/// The files of [`Suite::Sample`]: one per data type, and those that our
/// patches and the security queues touch (dump and corrupt payloads,
/// scripting, ACLs, HyperLogLog, introspection), persistence and the
/// client programs. Replication and auth run in [`Suite::Tls`].
pub const SAMPLE: &[&str] = &[
    "unit/type/string",
    "unit/type/hash",
    "unit/type/list",
    "unit/type/set",
    "unit/type/zset",
    "unit/type/stream",
    "unit/type/incr",
    "unit/expire",
    "unit/keyspace",
    "unit/dump",
    "unit/scripting",
    "unit/functions",
    "unit/acl",
    "unit/acl-v2",
    "unit/bitops",
    "unit/hyperloglog",
    "unit/info",
    "unit/introspection",
    "integration/aof",
    "integration/rdb",
    "integration/redis-cli",
    "integration/redis-benchmark",
    "integration/corrupt-dump",
];

/// Every suite: what `--suite` defaults to and `dist --check-upstream` runs.
/// The unit suite leaves the cluster unit files to [`Suite::ClusterUnit`],
/// which runs every one of them (7.0's `./runtest` lists its files by name
/// and misses those a patch adds).
pub const ALL: &[Suite] = &[
    Suite::Unit,
    Suite::ClusterUnit,
    Suite::Moduleapi,
    Suite::Tls,
    Suite::Cluster,
];

/// The files of [`Suite::Tls`] (TLS itself, replication and auth over TLS).
pub const TLS: &[&str] = &["unit/tls", "integration/replication", "unit/auth"];

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Suite::Unit => "unit",
            Suite::Sample => "sample",
            Suite::Tls => "tls",
            Suite::Moduleapi => "moduleapi",
            Suite::ClusterUnit => "cluster-unit",
            Suite::Cluster => "cluster",
        }
    }

    /// The program and its arguments, run in the suite's tree.
    /// `skip` names files another selected suite runs (`--skipunit`).
    pub(super) fn command(
        self,
        tree: &Path,
        baseport: u16,
        clients: usize,
        skip: &[String],
    ) -> Result<Vec<String>> {
        let mut argv: Vec<String> = match self {
            Suite::Cluster => vec!["./runtest-cluster".into()],
            Suite::Moduleapi => vec!["./runtest-moduleapi".into()],
            _ => vec!["./runtest".into()],
        };
        let singles: Vec<String> = match self {
            Suite::Sample => SAMPLE.iter().map(|s| s.to_string()).collect(),
            Suite::Tls => TLS.iter().map(|s| s.to_string()).collect(),
            Suite::ClusterUnit => cluster_unit_files(tree)?,
            _ => Vec::new(),
        };
        for s in singles {
            argv.push("--single".into());
            argv.push(s);
        }
        if self == Suite::Unit {
            for s in skip {
                argv.push("--skipunit".into());
                argv.push(s.clone());
            }
        }
        if self == Suite::Tls {
            argv.push("--tls".into());
        }
        if self != Suite::Cluster {
            argv.extend([
                "--baseport".into(),
                baseport.to_string(),
                "--portcount".into(),
                "2000".into(),
                "--clients".into(),
                clients.to_string(),
                // Latency limits do not hold on a shared, loaded machine.
                "--no-latency".into(),
                "--dump-logs".into(),
            ]);
        }
        Ok(argv)
    }
}

/// `unit/cluster/…` for every file of the tree's `tests/unit/cluster/`.
pub(super) fn cluster_unit_files(tree: &Path) -> Result<Vec<String>> {
    let dir = tree.join("tests/unit/cluster");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".tcl").map(|s| format!("unit/cluster/{s}"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Tests that cannot pass reliably in this environment, each with the reason.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exceptions {
    #[serde(default, rename = "exception")]
    pub exceptions: Vec<Exception>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// Redis lines it applies to (`7.0`, `8.0`).
    pub lines: Vec<String>,
    /// The test's name as the suite prints it.
    pub test: String,
    /// Its file (`unit/memefficiency`).
    pub file: String,
    pub reason: String,
}

impl Exceptions {
    pub fn load(root: &Path) -> Result<Exceptions> {
        let path = root.join(EXCEPTIONS_FILE);
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid exceptions file", path.display()))
    }

    pub(super) fn find(&self, line: &str, file: &str, test: &str) -> Option<&Exception> {
        self.exceptions
            .iter()
            .find(|e| e.lines.iter().any(|l| l == line) && e.file == file && e.test == test)
    }
}
