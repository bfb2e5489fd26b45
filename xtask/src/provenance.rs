//! The release's provenance: an in-toto statement (`<name>.intoto.json`)
//! whose subjects are the two archives and whose predicate is SLSA
//! provenance v1: every pinned input with its hash (the resolved
//! dependencies), the parameters of the build and the builder. Nothing in it
//! depends on the time or the machine, so a rebuild writes the same bytes.
//!
//! [`materials`] reads the inputs from a checkout; `dist` writes them, and
//! `verify-release` compares a statement's with the checkout's.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    build::Pgo,
    patch::Series,
    pins::{Pins, SourcePin, Target},
    project::Project,
    treehash,
};

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `dist` does with the parameters below (README.md, "Signed releases").
pub const BUILD_TYPE: &str = "urn:portable-redis:dist:v1";
pub const BUILDER_ID: &str = "urn:portable-redis:xtask";
/// The digest name of a source tree's hash (ARCHITECTURE.md, "Tree hash").
pub const TREE_DIGEST: &str = "portableRedisTree";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<Descriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: Provenance,
}

/// in-toto's ResourceDescriptor: a name, where it comes from, its digests.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Descriptor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub digest: BTreeMap<String, String>,
}

impl Descriptor {
    fn new(name: impl Into<String>, uri: Option<String>, algo: &str, hex: &str) -> Descriptor {
        Descriptor {
            name: name.into(),
            uri,
            digest: BTreeMap::from([(algo.to_string(), hex.to_string())]),
        }
    }

    pub fn sha256(&self) -> Option<&str> {
        self.digest.get("sha256").map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    /// The build flags and toolchain settings BUILDINFO.json records.
    pub internal_parameters: serde_json::Value,
    pub resolved_dependencies: Vec<Descriptor>,
}

/// What the person running `dist` chose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    /// The Redis version built (`--redis`).
    pub redis: String,
    pub sandbox: String,
    /// `--allow-cve`.
    pub allowed_cves: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    /// The BUILDINFO beside the archives.
    pub byproducts: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    pub id: String,
    /// `xtask` (its version) and `zig` (the toolchain's identity).
    pub version: BTreeMap<String, String>,
}

/// Every pinned input of a Redis line's release, as the checkout at
/// `project` has it, sorted by name: both source trees (by tree hash), the
/// security queues' archives, each patch of our series `target` takes, the
/// zig wheel, the target's verify policy and `vendor/advisories.toml`.
pub fn materials(
    project: &Project,
    pins: &Pins,
    redis: &SourcePin,
    target: &Target,
) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    for (pin, purl) in [
        (
            &pins.openssl,
            format!(
                "pkg:github/openssl/openssl@openssl-{}",
                pins.openssl.version
            ),
        ),
        (redis, format!("pkg:github/redis/redis@{}", redis.version)),
    ] {
        let tree = pin.tree.to_string();
        out.push(Descriptor::new(
            format!("{}-{}", pin.name, pin.version),
            Some(purl),
            TREE_DIGEST,
            tree.trim_start_matches("sha256:"),
        ));
        if let Some(q) = &pin.security {
            out.push(Descriptor::new(
                q.archive.clone(),
                Some(format!(
                    "pkg:deb/debian/{}@{}?arch=source",
                    pin.name, q.debian
                )),
                "sha256",
                &q.sha256,
            ));
        }
        if let Some(dir) = pin.patches_dir(&project.root) {
            let series = Series::load(&dir)?.for_target(target);
            for p in &series.patches {
                let path = dir.join(&p.name);
                out.push(Descriptor::new(
                    rel(&project.root, &path),
                    None,
                    "sha256",
                    &treehash::sha256_file(&path)?,
                ));
            }
        }
    }
    let z = &pins.toolchain;
    out.push(Descriptor::new(
        z.wheel.clone(),
        Some(format!("pkg:pypi/ziglang@{}", z.zig_version)),
        "sha256",
        &z.wheel_sha256,
    ));
    // The line's profile for the target, when the repository has one.
    if let Pgo::Use {
        profile, sha256, ..
    } = Pgo::from_checkout(&project.root, redis, target)?
    {
        out.push(Descriptor::new(profile, None, "sha256", &sha256));
    }
    for file in [target.policy.as_str(), "vendor/advisories.toml"] {
        let path = project.root.join(file);
        let hash = treehash::sha256_file(&path)
            .with_context(|| format!("hashing {} for the provenance", path.display()))?;
        out.push(Descriptor::new(file, None, "sha256", &hash));
    }
    out.sort();
    Ok(out)
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// What a release's statement is made of.
pub struct Facts<'a> {
    /// The archives with their SHA-256.
    pub subjects: Vec<(String, String)>,
    pub materials: Vec<Descriptor>,
    pub redis: &'a str,
    pub sandbox: &'a str,
    pub allowed_cves: Vec<String>,
    pub internal: serde_json::Value,
    /// The toolchain's identity (`ziglang wheel … sha256:…`, or the `--zig` binary's).
    pub zig: &'a str,
    /// The BUILDINFO beside the archives: file name and SHA-256.
    pub buildinfo: (String, String),
}

pub fn statement(f: Facts) -> Statement {
    Statement {
        statement_type: STATEMENT_TYPE.into(),
        subject: f
            .subjects
            .into_iter()
            .map(|(name, sha)| Descriptor::new(name, None, "sha256", &sha))
            .collect(),
        predicate_type: PREDICATE_TYPE.into(),
        predicate: Provenance {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE.into(),
                external_parameters: ExternalParameters {
                    redis: f.redis.into(),
                    sandbox: f.sandbox.into(),
                    allowed_cves: f.allowed_cves,
                },
                internal_parameters: f.internal,
                resolved_dependencies: f.materials,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: BUILDER_ID.into(),
                    version: BTreeMap::from([
                        ("xtask".to_string(), env!("CARGO_PKG_VERSION").to_string()),
                        ("zig".to_string(), f.zig.to_string()),
                    ]),
                },
                byproducts: vec![Descriptor::new(
                    f.buildinfo.0,
                    None,
                    "sha256",
                    &f.buildinfo.1,
                )],
            },
        },
    }
}

/// Read a statement and check it is one `dist` writes.
pub fn load(path: &Path) -> Result<Statement> {
    let text = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let s: Statement = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{} is not an in-toto statement of SLSA provenance",
            path.display()
        )
    })?;
    if s.statement_type != STATEMENT_TYPE || s.predicate_type != PREDICATE_TYPE {
        anyhow::bail!(
            "{}: _type {} and predicateType {}, expected {STATEMENT_TYPE} and {PREDICATE_TYPE}",
            path.display(),
            s.statement_type,
            s.predicate_type
        );
    }
    Ok(s)
}

/// How the materials of a statement differ from the checkout's, one line
/// each; empty when they agree.
pub fn differences(recorded: &[Descriptor], checkout: &[Descriptor]) -> Vec<String> {
    let by_name = |list: &[Descriptor]| -> BTreeMap<String, Descriptor> {
        list.iter().map(|d| (d.name.clone(), d.clone())).collect()
    };
    let (a, b) = (by_name(recorded), by_name(checkout));
    let mut out = Vec::new();
    for (name, d) in &a {
        match b.get(name) {
            None => out.push(format!("{name}: in the provenance, not in the checkout")),
            Some(c) if c.digest != d.digest => out.push(format!(
                "{name}: the provenance has {}, the checkout {}",
                digest_text(d),
                digest_text(c)
            )),
            Some(_) => {}
        }
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!("{name}: in the checkout, not in the provenance"));
    }
    out
}

fn digest_text(d: &Descriptor) -> String {
    d.digest
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, hex: &str) -> Descriptor {
        Descriptor::new(name, None, "sha256", hex)
    }

    #[test]
    fn a_statement_round_trips_with_in_toto_field_names() {
        let s = statement(Facts {
            subjects: vec![("r.tar.gz".into(), "ab".into())],
            materials: vec![d("patches/redis/7.0/0001.patch", "cd")],
            redis: "7.0.15",
            sandbox: "bwrap",
            allowed_cves: vec![],
            internal: serde_json::json!({"jobs": 2}),
            zig: "ziglang wheel z.whl sha256:ef",
            buildinfo: ("r.buildinfo.json".into(), "01".into()),
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["_type"], STATEMENT_TYPE);
        assert_eq!(json["predicateType"], PREDICATE_TYPE);
        assert_eq!(json["subject"][0]["digest"]["sha256"], "ab");
        let def = &json["predicate"]["buildDefinition"];
        assert_eq!(def["buildType"], BUILD_TYPE);
        assert_eq!(def["externalParameters"]["redis"], "7.0.15");
        assert_eq!(
            def["resolvedDependencies"][0]["name"],
            "patches/redis/7.0/0001.patch"
        );
        assert_eq!(
            json["predicate"]["runDetails"]["builder"]["version"]["zig"],
            "ziglang wheel z.whl sha256:ef"
        );
        let back: Statement = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn differences_name_each_changed_missing_and_extra_material() {
        let recorded = [d("a", "1"), d("b", "2"), d("c", "3")];
        let checkout = [d("a", "1"), d("b", "9"), d("e", "5")];
        assert_eq!(
            differences(&recorded, &checkout),
            [
                "b: the provenance has sha256:2, the checkout sha256:9",
                "c: in the provenance, not in the checkout",
                "e: in the checkout, not in the provenance",
            ]
        );
        assert!(differences(&recorded, &recorded).is_empty());
    }
}
