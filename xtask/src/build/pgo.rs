//! Profile-guided optimisation of Redis's own objects. A build is either
//! instrumented for a training run (`cargo xtask pgo`), or optimised with the
//! line's profile from the repository, or neither. The flags go through
//! `REDIS_CFLAGS` and `REDIS_LDFLAGS`, which Redis's Makefile gives to its own
//! compiles and links only (as its `make gcov` does): the bundled libraries
//! are neither instrumented nor profiled.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::{
    pins::{SourcePin, Target},
    sandbox::Sandbox,
    treehash,
};

/// Where the profile sits in the sandbox of a Redis build.
const PROFILE_INSIDE: &str = "/build/redis.profdata";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Pgo {
    #[default]
    Off,
    /// Counters in every function of Redis's own, written at exit to
    /// `$LLVM_PROFILE_FILE` by clang's profile runtime (`runtime`, of the
    /// LLVM version zig's clang is).
    Generate {
        runtime: PathBuf,
        runtime_sha256: String,
    },
    /// Optimised with the profile `profile` (relative to the checkout).
    Use {
        profile: String,
        sha256: String,
        #[serde(skip)]
        file: PathBuf,
    },
}

impl Pgo {
    pub fn is_off(&self) -> bool {
        matches!(self, Pgo::Off)
    }

    /// The line's profile for `target` in the checkout at `root`, when the
    /// repository has one; off otherwise.
    pub fn from_checkout(root: &Path, pin: &SourcePin, target: &Target) -> Result<Pgo> {
        let profile = profile_path(pin, target);
        let file = root.join(&profile);
        if !file.is_file() {
            return Ok(Pgo::Off);
        }
        Ok(Pgo::Use {
            sha256: treehash::sha256_file(&file)?,
            profile,
            file,
        })
    }

    /// Redis's `make` variables for this mode; the profile is mounted into
    /// `sb` where the compiles read it.
    pub fn make_args(&self, sb: &mut Sandbox) -> Vec<String> {
        match self {
            Pgo::Off => Vec::new(),
            Pgo::Generate { runtime, .. } => vec![
                "REDIS_CFLAGS=-fprofile-instr-generate".into(),
                // zig's driver does not add the runtime, nor the reference
                // that pulls in its registration (clang's driver does both).
                format!(
                    "REDIS_LDFLAGS=-Wl,-u,__llvm_profile_runtime {}",
                    runtime.display()
                ),
            ],
            Pgo::Use { file, .. } => {
                let inside = sb.mount(file, PROFILE_INSIDE, false);
                vec![format!(
                    "REDIS_CFLAGS=-fprofile-instr-use={}",
                    inside.display()
                )]
            }
        }
    }
}

/// The repository's profile of `pin` for `target`:
/// `profiles/redis-7.0.15/x86_64-linux-glibc2.11.profdata`.
pub fn profile_path(pin: &SourcePin, target: &Target) -> String {
    format!("profiles/{}/{}.profdata", pin.id(), target.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pins::Pins, sandbox::SandboxKind};

    fn pins() -> Pins {
        Pins::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("..")).unwrap()
    }

    #[test]
    fn a_profile_in_the_checkout_is_used_and_none_is_off() {
        let pins = pins();
        let (pin, target) = (&pins.redis[0], &pins.targets[0]);
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            Pgo::from_checkout(root.path(), pin, target).unwrap(),
            Pgo::Off
        );
        let rel = profile_path(pin, target);
        assert_eq!(
            rel,
            format!("profiles/redis-{}/{}.profdata", pin.version, target.name)
        );
        let file = root.path().join(&rel);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"profile").unwrap();
        let Pgo::Use {
            profile, sha256, ..
        } = Pgo::from_checkout(root.path(), pin, target).unwrap()
        else {
            panic!("a profile in the checkout must be used")
        };
        assert_eq!(profile, rel);
        assert_eq!(sha256, treehash::sha256_bytes(b"profile"));
        // Another target has no profile.
        assert_eq!(
            Pgo::from_checkout(root.path(), pin, &pins.targets[1]).unwrap(),
            Pgo::Off
        );
    }

    #[test]
    fn each_mode_gives_redis_its_own_flags_only() {
        let mut sb = Sandbox::new(SandboxKind::Bwrap);
        assert!(Pgo::Off.make_args(&mut sb).is_empty());
        let generate = Pgo::Generate {
            runtime: "/usr/lib/llvm-22/libclang_rt.profile-x86_64.a".into(),
            runtime_sha256: "00".into(),
        };
        assert_eq!(
            generate.make_args(&mut sb),
            [
                "REDIS_CFLAGS=-fprofile-instr-generate",
                "REDIS_LDFLAGS=-Wl,-u,__llvm_profile_runtime /usr/lib/llvm-22/libclang_rt.profile-x86_64.a"
            ]
        );
        let using = Pgo::Use {
            profile: "profiles/redis-7.0.15/t.profdata".into(),
            sha256: "11".into(),
            file: "/checkout/profiles/redis-7.0.15/t.profdata".into(),
        };
        assert_eq!(
            using.make_args(&mut sb),
            ["REDIS_CFLAGS=-fprofile-instr-use=/build/redis.profdata"]
        );
        assert_eq!(
            sb.host_path(Path::new("/build/redis.profdata")),
            Path::new("/checkout/profiles/redis-7.0.15/t.profdata")
        );
        // The record names the profile by its place in the checkout and its
        // hash, never by the checkout's folder.
        let record = serde_json::to_string(&using).unwrap();
        assert_eq!(
            record,
            r#"{"mode":"use","profile":"profiles/redis-7.0.15/t.profdata","sha256":"11"}"#
        );
    }
}
