//! Stage 1, vendor: a pinned source tree, verified by its tree hash.
//!
//! Origins, tried in order; each failure is reported in one line:
//! (a) local cache (the unpacked tree, or an archive fetched before),
//! (b) a mirror folder holding archives by file name (`--mirror DIR` or
//!     `PORTABLE_REDIS_MIRROR`), (c) the pin's upstream addresses via curl,
//! (d) the host's Debian/Ubuntu source archive through apt, (e) a crate that
//!     Cargo.lock resolves (the OpenSSL pin: the `openssl-src` crate).
//!
//! Each origin is a function; [`Origins`] keeps what each one that missed
//! said and decides whether the mirror and Debian origins apply. The
//! security queues (`security/`) go through the same.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    archive::{self, Root},
    debian::AptOrigin,
    lockfile, net,
    pins::{DebianPin, SourcePin},
    project::Project,
    treehash::{self, tree_hash, TreeHash},
};

pub const MIRROR_ENV: &str = "PORTABLE_REDIS_MIRROR";

/// A pinned tree, present and verified.
#[derive(Debug, Clone)]
pub struct VendoredSource {
    /// The pin; from [`discover`], with the tree hash that was found.
    pub pin: SourcePin,
    pub dir: PathBuf,
    /// Which origin supplied it, for the log and BUILDINFO.
    pub origin: String,
    /// The archive the tree came from (`None` when the unpacked tree was cached).
    pub archive: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct VendorOptions {
    pub mirror: Option<PathBuf>,
    /// Skip the network origins (c) and (d).
    pub offline: bool,
}

impl VendorOptions {
    pub fn mirror(&self) -> Option<PathBuf> {
        self.mirror
            .clone()
            .or_else(|| std::env::var_os(MIRROR_ENV).map(PathBuf::from))
    }
}

/// The origins of one pinned input (a source tree, a security queue's
/// archive), tried in order: each that does not supply it says why in one
/// line, printed as it happens, and when none does, the error names them all
/// and the fix.
pub struct Origins {
    /// What is being obtained, e.g. `redis 7.0.15` or `redis-7.0.15 security queue`.
    what: String,
    failures: Vec<String>,
}

impl Origins {
    pub fn new(what: impl Into<String>) -> Origins {
        Origins {
            what: what.into(),
            failures: Vec::new(),
        }
    }

    /// `origin` did not supply the input, for `why`.
    pub fn missed(&mut self, origin: &str, why: impl std::fmt::Display) {
        let line = format!("{origin}: {}", one_line(why));
        eprintln!("  {}: {line}", self.what);
        self.failures.push(line);
    }

    /// `origin`'s result: its value, or `None` with the error recorded.
    pub fn attempt<T>(&mut self, origin: &str, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.missed(origin, e);
                None
            }
        }
    }

    /// The mirror folder to look in, or why there is none.
    pub fn mirror(&mut self, opts: &VendorOptions) -> Option<PathBuf> {
        let dir = opts.mirror();
        if dir.is_none() {
            self.missed(
                "mirror",
                format!("none given (--mirror DIR or {MIRROR_ENV})"),
            );
        }
        dir
    }

    /// The pin's Debian source package to ask apt for, or why not.
    pub fn debian<'p>(
        &mut self,
        pin: &'p SourcePin,
        opts: &VendorOptions,
    ) -> Option<&'p DebianPin> {
        match (&pin.debian, opts.offline) {
            (None, _) => self.missed("debian", "the pin names no source package"),
            (Some(_), true) => self.missed("debian", "skipped (offline)"),
            (Some(deb), false) => return Some(deb),
        }
        None
    }

    /// The error once every origin missed: `wanted` says what would have
    /// been accepted, `fix` what to do.
    pub fn exhausted(self, wanted: &str, fix: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "no origin supplied {} ({wanted}):\n  {}\nfix: {fix}",
            self.what,
            self.failures.join("\n  "),
        )
    }
}

/// Where the verified tree of `pin` is kept.
pub fn tree_dir(project: &Project, pin: &SourcePin) -> PathBuf {
    project
        .sources()
        .join(format!("{}-{}", pin.id(), pin.tree.short()))
}

/// The pinned tree of `pin`, from the first origin that holds it.
pub fn vendor(project: &Project, pin: &SourcePin, opts: &VendorOptions) -> Result<VendoredSource> {
    obtain(project, pin, Some(&pin.tree), opts)
}

/// The tree of a pin being prepared (`cargo xtask upgrade`), whose hash is not
/// known yet: the same origins in the same order and the same safe extraction
/// as [`vendor`], but any tree is accepted and its hash computed. `pin.tree` is
/// not consulted; the returned pin carries the hash that was found, and the
/// tree is cached where [`vendor`] will look for it once the pin is written.
pub fn discover(
    project: &Project,
    pin: &SourcePin,
    opts: &VendorOptions,
) -> Result<VendoredSource> {
    obtain(project, pin, None, opts)
}

fn obtain(
    project: &Project,
    pin: &SourcePin,
    expected: Option<&TreeHash>,
    opts: &VendorOptions,
) -> Result<VendoredSource> {
    // A discovered tree is unpacked beside the cache and moved to its
    // hash-named folder once the hash is known.
    let dest = match expected {
        Some(_) => tree_dir(project, pin),
        None => project.sources().join(format!("{}-unpinned", pin.id())),
    };
    let mut origins = Origins::new(format!("{} {}", pin.name, pin.version));
    let want = Wanted {
        project,
        pin,
        expected,
        dest: &dest,
    };
    let found = want
        .try_cache(&mut origins)?
        .or_else(|| want.try_mirror(opts, &mut origins))
        .or_else(|| want.try_upstream(opts, &mut origins))
        .or_else(|| want.try_debian(opts, &mut origins))
        .or_else(|| want.try_crate(&mut origins));
    let Some(Found {
        origin,
        tree,
        archive,
    }) = found
    else {
        let wanted = match expected {
            Some(h) => h.to_string(),
            None => "tree hash not pinned yet".to_string(),
        };
        let fix = if pin.archives.is_empty() {
            format!(
                "give the {} pin an origin in {}",
                pin.id(),
                crate::pins::PINS_FILE
            )
        } else {
            format!(
                "put one of [{}] into a folder and pass --mirror DIR, or restore network access",
                pin.archives.join(", ")
            )
        };
        return Err(origins.exhausted(&wanted, &fix));
    };
    eprintln!("  {} {}: {origin}", pin.name, pin.version);
    let pin = SourcePin {
        tree,
        ..pin.clone()
    };
    let dir = tree_dir(project, &pin);
    if dir != dest {
        crate::fsutil::replace_dir(&dest, &dir)?;
    }
    Ok(VendoredSource {
        pin,
        dir,
        origin,
        archive,
    })
}

/// What an origin supplied: the tree (unpacked at `dest`), its hash, the
/// archive it came from.
struct Found {
    origin: String,
    tree: TreeHash,
    archive: Option<PathBuf>,
}

impl Found {
    fn from_archive(origin: String, (archive, tree): (PathBuf, TreeHash)) -> Found {
        Found {
            origin,
            tree,
            archive: Some(archive),
        }
    }
}

/// The tree every origin is asked for: `pin`'s, unpacked at `dest`, with the
/// `expected` hash (`None` while a new pin is discovered).
struct Wanted<'a> {
    project: &'a Project,
    pin: &'a SourcePin,
    expected: Option<&'a TreeHash>,
    dest: &'a Path,
}

impl Wanted<'_> {
    /// (a) The local cache: the unpacked tree, re-hashed so a modified tree
    /// is caught; else an archive fetched before.
    fn try_cache(&self, origins: &mut Origins) -> Result<Option<Found>> {
        if let Some(want) = self.expected.filter(|_| self.dest.is_dir()) {
            match tree_hash(self.dest) {
                Ok(h) if &h == want => {
                    return Ok(Some(Found {
                        origin: "cache".into(),
                        tree: h,
                        archive: None,
                    }))
                }
                Ok(h) => {
                    origins.missed(
                        "cache",
                        format!(
                            "{} was modified (holds {h}); fetching it again",
                            self.dest.display()
                        ),
                    );
                    crate::fsutil::make_writable_and_remove(self.dest)?;
                }
                Err(e) => origins.missed("cache", e),
            }
        }
        let downloads = self.project.downloads();
        let found = self.archive_in(&downloads, true, "cache", origins);
        Ok(found.map(|(path, tree)| {
            Found::from_archive(format!("cache ({})", file_name(&path)), (path, tree))
        }))
    }

    /// (b) A mirror folder holding the pin's archives by name.
    fn try_mirror(&self, opts: &VendorOptions, origins: &mut Origins) -> Option<Found> {
        let dir = origins.mirror(opts)?;
        let found = self.archive_in(&dir, false, "mirror", origins);
        found.map(|(path, tree)| {
            Found::from_archive(format!("mirror {}", path.display()), (path, tree))
        })
    }

    /// One of the pin's archives in `dir`, unpacked; `None` (recorded as
    /// `origin`'s miss) when `dir` holds none or it failed.
    fn archive_in(
        &self,
        dir: &Path,
        ours: bool,
        origin: &str,
        origins: &mut Origins,
    ) -> Option<(PathBuf, TreeHash)> {
        let found = origins.attempt(
            origin,
            try_archives(dir, self.pin, self.expected, self.dest, ours),
        )?;
        if found.is_none() {
            let why = if ours {
                format!("no tree and no archive in {}", dir.display())
            } else {
                format!(
                    "{} holds none of {}",
                    dir.display(),
                    self.pin.archives.join(", ")
                )
            };
            origins.missed(origin, why);
        }
        found
    }

    /// (c) The pin's upstream addresses.
    fn try_upstream(&self, opts: &VendorOptions, origins: &mut Origins) -> Option<Found> {
        if opts.offline {
            origins.missed("upstream", "skipped (offline)");
            return None;
        }
        if self.pin.urls.is_empty() {
            origins.missed("upstream", "the pin lists no address");
        }
        self.pin.urls.iter().find_map(|url| {
            let name = url.rsplit('/').next().unwrap_or("download");
            let archive = self.project.downloads().join(name);
            let got = net::download(url, &archive, None)
                .and_then(|()| self.extract(&archive))
                .map(|tree| (archive, tree));
            let found = origins.attempt(&format!("upstream {url}"), got)?;
            Some(Found::from_archive(format!("upstream {url}"), found))
        })
    }

    /// (d) The host's Debian/Ubuntu source archive, through apt.
    fn try_debian(&self, opts: &VendorOptions, origins: &mut Origins) -> Option<Found> {
        let deb = origins.debian(self.pin, opts)?;
        let apt = AptOrigin {
            state: &self.project.apt(),
            downloads: &self.project.downloads(),
        };
        let got = apt
            .fetch(deb, &self.pin.version)
            .and_then(|(archive, what)| self.extract(&archive).map(|h| (what, (archive, h))));
        let (what, found) = origins.attempt("debian", got)?;
        Some(Found::from_archive(format!("debian {what}"), found))
    }

    /// (e) A crate resolved by Cargo.lock.
    fn try_crate(&self, origins: &mut Origins) -> Option<Found> {
        let Some(spec) = &self.pin.cargo_crate else {
            origins.missed("crate", "the pin names no crate");
            return None;
        };
        let got = from_cargo(self.project, spec, self.pin, self.expected, self.dest);
        let found = origins.attempt(&format!("crate {spec}"), got)?;
        Some(Found::from_archive(
            format!("crate {}", found.0.display()),
            found,
        ))
    }

    /// A fetched archive unpacked at `dest` (removed when it is not the pin's).
    fn extract(&self, archive: &Path) -> Result<TreeHash> {
        extract_fetched(archive, self.pin, self.expected, self.dest)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// An error (with its causes) or a reason on one line.
fn one_line(e: impl std::fmt::Display) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn root_of(pin: &SourcePin) -> Root {
    match &pin.root {
        Some(r) => Root::Subdir(r.into()),
        None => Root::SingleTopDir,
    }
}

/// Try each of the pin's archive names in `dir`; `Ok(None)` when none is there.
fn try_archives(
    dir: &Path,
    pin: &SourcePin,
    expected: Option<&TreeHash>,
    dest: &Path,
    ours: bool,
) -> Result<Option<(PathBuf, TreeHash)>> {
    let mut errors = Vec::new();
    for name in &pin.archives {
        let archive = dir.join(name);
        if !archive.is_file() {
            continue;
        }
        // A bad archive we downloaded ourselves is removed; a mirror's is not ours.
        let extracted = if ours {
            extract_fetched(&archive, pin, expected, dest)
        } else {
            archive::extract_checked(&archive, &root_of(pin), expected, dest)
        };
        match extracted {
            Ok(h) => return Ok(Some((archive, h))),
            Err(e) => errors.push(one_line(e)),
        }
    }
    if errors.is_empty() {
        Ok(None)
    } else {
        bail!("{}", errors.join("; "))
    }
}

/// Extract an archive we downloaded; a wrong tree also deletes the download,
/// so nothing unverified stays behind.
fn extract_fetched(
    archive: &Path,
    pin: &SourcePin,
    expected: Option<&TreeHash>,
    dest: &Path,
) -> Result<TreeHash> {
    let r = archive::extract_checked(archive, &root_of(pin), expected, dest);
    if r.is_err() {
        let _ = fs::remove_file(archive);
    }
    r
}

/// Origin (e): the `.crate` file Cargo downloaded for the version Cargo.lock
/// resolves, checked against Cargo.lock's checksum.
fn from_cargo(
    project: &Project,
    spec: &str,
    pin: &SourcePin,
    expected: Option<&TreeHash>,
    dest: &Path,
) -> Result<(PathBuf, TreeHash)> {
    let (name, version) = spec
        .split_once('@')
        .context("cargo-crate must be name@version")?;
    let locked = lockfile::locked_in(&project.root, name)?;
    if locked.version != version {
        bail!(
            "Cargo.lock resolves {name} {}, the pin needs {version}",
            locked.version
        );
    }
    let file_name = format!("{name}-{version}.crate");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    let cache = cargo_home.join("registry/cache");
    let mut found = None;
    for index in fs::read_dir(&cache).with_context(|| format!("reading {}", cache.display()))? {
        let candidate = index?.path().join(&file_name);
        if candidate.is_file() {
            found = Some(candidate);
            break;
        }
    }
    let crate_file = found.with_context(|| {
        format!(
            "{file_name} is not in {}; run `cargo fetch`",
            cache.display()
        )
    })?;
    let checksum = treehash::sha256_file(&crate_file)?;
    if Some(&checksum) != locked.checksum.as_ref() {
        bail!(
            "{} has SHA-256 {checksum}, Cargo.lock says {:?}",
            crate_file.display(),
            locked.checksum
        );
    }
    let h = archive::extract_checked(&crate_file, &root_of(pin), expected, dest)?;
    Ok((crate_file, h))
}

/// `cargo xtask vendor`: fetch and verify every pinned tree.
pub fn run(project: &Project, opts: &VendorOptions, line: Option<&str>) -> Result<()> {
    let pins = project.pins()?;
    let _lock = project.lock()?;
    let redis: Vec<&SourcePin> = match line {
        Some(l) => vec![pins.redis(Some(l))?],
        None => pins.redis.iter().collect(),
    };
    for pin in std::iter::once(&pins.openssl).chain(redis) {
        let v = vendor(project, pin, opts)?;
        println!(
            "{} {} {} {}",
            pin.name,
            pin.version,
            pin.tree,
            v.dir.display()
        );
    }
    Ok(())
}

/// `cargo xtask hash DIR`: print a tree's hash (for writing pins).
pub fn hash(dir: &Path) -> Result<()> {
    println!(
        "{}",
        tree_hash(dir).with_context(|| format!("hashing {}", dir.display()))?
    );
    Ok(())
}
