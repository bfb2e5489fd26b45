//! `--against DIR`: check a binary against a copy of a real host's libraries
//! the way its loader would. DIR holds the host's library folders (`lib64/`,
//! `usr/lib64/`, `lib/x86_64-linux-gnu/`, `lib/aarch64-linux-gnu/`, `lib/`,
//! …, searched in that order, symlinks resolved inside DIR; a library for
//! another machine than the binary's is skipped, as ld.so skips it). Every NEEDED library must be there, define
//! every version the binary needs from it and every `symbol@version` bound to
//! it; failures are worded as glibc's ld.so words them.

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::{Component, Path, PathBuf},
};

use anyhow::{bail, Result};

use crate::{
    elf::{self, ElfFacts},
    report::{HostResult, Violation},
    rule::Rule,
};

/// Library folders below DIR, in the order they are searched.
pub const SEARCH_DIRS: &[&str] = &[
    "lib64",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib",
    "usr/lib",
];

/// How many missing items the host table shows per binary.
const FIRST_MISSING: usize = 3;

/// A host library, as much of it as the loader checks.
struct Library {
    /// Its path on the host (`/lib64/libc.so.6`).
    path: String,
    version_defs: HashSet<String>,
    /// (name, version) of every defined dynamic symbol.
    exports: HashSet<(String, Option<String>)>,
    names: HashSet<String>,
}

/// One `--against` folder; libraries are read once and reused.
pub struct Host {
    pub label: String,
    root: PathBuf,
    /// The machine of the binary being checked (`x86_64`, `aarch64`).
    machine: &'static str,
    /// `machine/name` → the library found, if any.
    libraries: HashMap<String, Option<Library>>,
}

impl Host {
    pub fn open(root: &Path) -> Result<Host> {
        if !root.is_dir() {
            bail!("host folder {}: no such folder", root.display());
        }
        if !SEARCH_DIRS.iter().any(|d| root.join(d).is_dir()) {
            bail!(
                "host folder {}: holds none of {}; copy the host's library folders into it \
                 (e.g. `cp -a /lib64 /usr/lib64 DIR/`)",
                root.display(),
                SEARCH_DIRS.join(", ")
            );
        }
        Ok(Host {
            label: root.display().to_string(),
            root: root.to_path_buf(),
            machine: "x86_64",
            libraries: HashMap::new(),
        })
    }

    fn library(&mut self, name: &str) -> Option<&Library> {
        // Looked up per machine: one host folder may hold both.
        let key = format!("{}/{name}", self.machine);
        if !self.libraries.contains_key(&key) {
            let found = self.find(name);
            self.libraries.insert(key.clone(), found);
        }
        self.libraries.get(&key).and_then(Option::as_ref)
    }

    /// Search the library folders like ld.so's default path: the first file
    /// of that name that is a 64-bit ELF file for the binary's machine wins.
    fn find(&self, name: &str) -> Option<Library> {
        for dir in SEARCH_DIRS {
            let inside = Path::new("/").join(dir).join(name);
            let Some(real) = resolve_in_root(&self.root, &inside) else {
                continue;
            };
            let Ok(data) = fs::read(&real) else { continue };
            let Ok(facts) = elf::read(&data) else {
                continue; // wrong class or machine: ld.so skips it too
            };
            if facts.machine != self.machine {
                continue; // another machine's library: ld.so skips it too
            }
            return Some(Library {
                path: inside.display().to_string(),
                version_defs: facts.version_defs.iter().cloned().collect(),
                names: facts.exports.iter().map(|e| e.name.clone()).collect(),
                exports: facts
                    .exports
                    .into_iter()
                    .map(|e| (e.name, e.version))
                    .collect(),
            });
        }
        None
    }

    fn has_file(&self, inside: &str) -> bool {
        resolve_in_root(&self.root, Path::new(inside)).is_some()
    }

    /// Check one binary: the host table row and the loader's messages.
    pub fn check(&mut self, binary: &str, facts: &ElfFacts) -> (HostResult, Vec<Violation>) {
        self.machine = facts.machine;
        let mut run = LoaderRun {
            binary,
            host: self.label.clone(),
            missing: Vec::new(),
            errors: Vec::new(),
        };
        self.check_files(&mut run, facts);
        let absent_versions = self.check_versions(&mut run, facts);
        self.check_imports(&mut run, facts, &absent_versions);
        let LoaderRun {
            mut missing,
            errors,
            ..
        } = run;
        let total = missing.len();
        missing.truncate(FIRST_MISSING);
        if total > FIRST_MISSING {
            missing.push(format!("… {} more", total - FIRST_MISSING));
        }
        let result = HostResult {
            binary: binary.to_string(),
            host: self.label.clone(),
            passed: errors.is_empty(),
            missing,
            loader_errors: errors.iter().map(|e| e.message.clone()).collect(),
        };
        (result, errors)
    }

    /// The interpreter and every needed library must exist on the host.
    fn check_files(&mut self, run: &mut LoaderRun, facts: &ElfFacts) {
        let binary = run.binary;
        if let Some(interp) = &facts.interpreter {
            if !self.has_file(interp) {
                run.fail(
                    interp.clone(),
                    Violation::new(
                        Rule::TargetHost,
                        format!("{binary}: cannot execute: required file not found (the interpreter {interp} is not on this host)"),
                    )
                    .library(interp),
                );
            }
        }
        for lib in &facts.needed {
            if self.library(lib).is_none() {
                run.fail(
                    lib.clone(),
                    Violation::new(
                        Rule::TargetHost,
                        format!(
                            "{binary}: error while loading shared libraries: {lib}: cannot open shared object file: No such file or directory"
                        ),
                    )
                    .library(lib),
                );
            }
        }
    }

    /// Every strong version need must be defined by its library; the
    /// `(library, version)` pairs that are not.
    fn check_versions(
        &mut self,
        run: &mut LoaderRun,
        facts: &ElfFacts,
    ) -> HashSet<(String, String)> {
        let binary = run.binary;
        let mut absent_versions = HashSet::new();
        for need in &facts.version_needs {
            if need.weak {
                continue;
            }
            let Some(lib) = self.library(&need.library) else {
                continue;
            };
            if lib.version_defs.contains(&need.version) {
                continue;
            }
            let message = format!(
                "{binary}: {}: version `{}' not found (required by {binary})",
                lib.path, need.version
            );
            absent_versions.insert((need.library.clone(), need.version.clone()));
            run.fail(
                format!("{} ({})", need.version, need.library),
                Violation::new(Rule::TargetHost, message)
                    .library(&need.library)
                    .version(&need.version),
            );
        }
        absent_versions
    }

    /// Every import must be found: a versioned one in its library at its
    /// version (unless the version itself is absent), an unversioned strong
    /// one in any needed library.
    fn check_imports(
        &mut self,
        run: &mut LoaderRun,
        facts: &ElfFacts,
        absent_versions: &HashSet<(String, String)>,
    ) {
        let binary = run.binary;
        for imp in &facts.imports {
            match (&imp.version, &imp.library) {
                (Some(version), Some(library)) => {
                    if absent_versions.contains(&(library.clone(), version.clone())) {
                        continue; // already fatal at the version check
                    }
                    let Some(lib) = self.library(library) else {
                        continue;
                    };
                    if lib
                        .exports
                        .contains(&(imp.name.clone(), Some(version.clone())))
                    {
                        continue;
                    }
                    run.fail(
                        format!("{}@{version}", imp.name),
                        Violation::new(
                            Rule::TargetHost,
                            format!(
                                "{binary}: relocation error: {binary}: symbol {} version {version} not defined in file {library} with link time reference",
                                imp.name
                            ),
                        )
                        .library(library)
                        .symbol(&imp.name)
                        .version(version),
                    );
                }
                _ if imp.weak => {}
                _ => {
                    let found = facts.needed.iter().any(|l| {
                        self.library(l)
                            .is_some_and(|lib| lib.names.contains(&imp.name))
                    });
                    if !found {
                        run.fail(
                            imp.name.clone(),
                            Violation::new(
                                Rule::TargetHost,
                                format!(
                                    "{binary}: symbol lookup error: {binary}: undefined symbol: {}",
                                    imp.name
                                ),
                            )
                            .symbol(&imp.name),
                        );
                    }
                }
            }
        }
    }
}

/// What one binary's run through a host's loader would miss, and the
/// loader's messages for it.
struct LoaderRun<'b> {
    binary: &'b str,
    host: String,
    missing: Vec<String>,
    errors: Vec<Violation>,
}

impl LoaderRun<'_> {
    fn fail(&mut self, missing: String, v: Violation) {
        self.missing.push(missing);
        self.errors.push(Violation {
            host: Some(self.host.clone()),
            ..v
        });
    }
}

/// `inside` (an absolute path on the host) as a path below `root`, following
/// symlinks as the host would: absolute targets start again at `root`.
/// `None` when it does not exist.
pub fn resolve_in_root(root: &Path, inside: &Path) -> Option<PathBuf> {
    let mut pending: Vec<String> = components(inside);
    pending.reverse();
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(part);
        let here = current.iter().fold(root.to_path_buf(), |p, c| p.join(c));
        let meta = fs::symlink_metadata(&here).ok()?;
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return None;
            }
            let target = fs::read_link(&here).ok()?;
            current.pop();
            if target.is_absolute() {
                current.clear();
            }
            let mut parts = components(&target);
            parts.reverse();
            pending.extend(parts);
        }
    }
    let path = current.iter().fold(root.to_path_buf(), |p, c| p.join(c));
    path.exists().then_some(path)
}

fn components(p: &Path) -> Vec<String> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_host_folder() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir_all(root.join("lib64")).unwrap();
        fs::write(root.join("lib64/libc-2.11.1.so"), b"x").unwrap();
        symlink("libc-2.11.1.so", root.join("lib64/libc.so.6")).unwrap();
        // An absolute link means the host's /lib64, i.e. root/lib64 here.
        fs::create_dir_all(root.join("usr/lib64")).unwrap();
        symlink("/lib64/libc.so.6", root.join("usr/lib64/libc.so.6")).unwrap();
        symlink("../../lib64/nothing", root.join("usr/lib64/libm.so.6")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/usr/lib64/libc.so.6")),
            Some(root.join("lib64/libc-2.11.1.so"))
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/lib64/libc.so.6")),
            Some(root.join("lib64/libc-2.11.1.so"))
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/usr/lib64/libm.so.6")),
            None
        );
        symlink("loop", root.join("lib64/loop")).unwrap();
        assert_eq!(resolve_in_root(root, Path::new("/lib64/loop")), None);
    }

    /// target-host on synthetic facts: an old libc (no GLIBC_2.14, no
    /// memcpy@GLIBC_2.14) and no libz; the loader's words for each.
    #[test]
    fn target_host_reports_what_the_hosts_loader_would_print() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("lib64")).unwrap();
        fs::write(d.path().join("lib64/ld-linux-x86-64.so.2"), b"").unwrap();
        let mut host = Host::open(d.path()).unwrap();
        let exports = [("memcpy", "GLIBC_2.2.5"), ("puts", "GLIBC_2.2.5")];
        host.libraries.insert(
            "x86_64/libc.so.6".into(),
            Some(Library {
                path: "/lib64/libc.so.6".into(),
                version_defs: ["GLIBC_2.2.5", "GLIBC_2.11"].map(String::from).into(),
                exports: exports
                    .iter()
                    .map(|(n, v)| (n.to_string(), Some(v.to_string())))
                    .collect(),
                names: exports.iter().map(|(n, _)| n.to_string()).collect(),
            }),
        );
        let import = |name: &str, version: &str| elf::Import {
            name: name.into(),
            version: Some(version.into()),
            library: Some("libc.so.6".into()),
            weak: false,
        };
        let need = |version: &str| elf::VersionNeed {
            library: "libc.so.6".into(),
            version: version.into(),
            weak: false,
        };
        let facts =
            |imports: Vec<elf::Import>, needs: Vec<elf::VersionNeed>, needed: &[&str]| ElfFacts {
                imports,
                version_needs: needs,
                ..ElfFacts::test_pie(needed)
            };

        let good = facts(
            vec![import("memcpy", "GLIBC_2.2.5")],
            vec![need("GLIBC_2.2.5")],
            &["libc.so.6"],
        );
        let (result, errors) = host.check("BIN", &good);
        assert!(result.passed && errors.is_empty(), "{errors:?}");

        let new = facts(
            vec![import("memcpy", "GLIBC_2.14"), import("puts", "GLIBC_2.11")],
            vec![need("GLIBC_2.14"), need("GLIBC_2.11")],
            &["libc.so.6", "libz.so.1"],
        );
        let (result, errors) = host.check("BIN", &new);
        assert!(!result.passed);
        assert!(errors.iter().all(|e| e.rule == Rule::TargetHost));
        assert_eq!(
            result.loader_errors,
            [
                "BIN: error while loading shared libraries: libz.so.1: cannot open shared \
                 object file: No such file or directory",
                "BIN: /lib64/libc.so.6: version `GLIBC_2.14' not found (required by BIN)",
                "BIN: relocation error: BIN: symbol puts version GLIBC_2.11 not defined in \
                 file libc.so.6 with link time reference",
            ]
        );
        assert_eq!(
            result.missing,
            ["libz.so.1", "GLIBC_2.14 (libc.so.6)", "puts@GLIBC_2.11"]
        );
    }

    #[test]
    fn a_folder_without_library_folders_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = Host::open(d.path()).err().unwrap().to_string();
        assert!(e.contains("holds none of lib64"), "{e}");
    }
}
