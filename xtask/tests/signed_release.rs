//! A release a downstream can re-check: `dist --sign KEY` signs SHA256SUMS
//! and writes the in-toto provenance; `verify-release` passes the folder as
//! written and fails, each with its own message, a byte changed in an
//! archive, a SHA256SUMS rewritten to match it, a wrong key, and provenance
//! whose inputs are not the checkout's (re-signed, so only that check can
//! catch it).

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use common::{repo_root, scratch, xtask};
use serde_json::Value;

const LINE: &str = "7.0";

struct Signed {
    dir: PathBuf,
    key: PathBuf,
    public: PathBuf,
    other: PathBuf,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"])
        .arg(path)
        .status()
        .expect("running ssh-keygen");
    assert!(st.success());
}

/// `dist --redis 7.0 --sign KEY` into a folder of its own, once.
fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let root = scratch("signed-release");
        let (key, other) = (root.join("publisher"), root.join("someone-else"));
        keygen(&key);
        keygen(&other);
        let dir = root.join("dist");
        let out = xtask()
            .args(["dist", "--redis", LINE, "--sign"])
            .arg(&key)
            .arg("--out")
            .arg(&dir)
            .output()
            .expect("running cargo xtask dist");
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "dist --sign failed:\n{log}");
        assert!(log.contains("signed "), "{log}");
        Signed {
            dir,
            public: root.join("publisher.pub"),
            other: root.join("someone-else.pub"),
            key,
        }
    })
}

/// `verify-release --json DIR [--key PUB]`: exit code and report.
fn verify_release(dir: &Path, key: Option<&Path>) -> (i32, Value) {
    let mut cmd = xtask();
    cmd.args(["verify-release", "--json"]).arg(dir);
    if let Some(k) = key {
        cmd.arg("--key").arg(k);
    }
    let out = cmd.output().expect("running cargo xtask verify-release");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify-release printed no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The failed checks: (check, subject, message).
fn failures(report: &Value) -> Vec<(String, String, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["check"].as_str().unwrap().to_string(),
                c["subject"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A copy of the signed folder to spoil.
fn copy_of(name: &str) -> PathBuf {
    let dir = scratch(name);
    for e in fs::read_dir(&signed().dir).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    dir
}

fn find(dir: &Path, what: impl Fn(&str) -> bool) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| what(&p.file_name().unwrap().to_string_lossy()))
        .expect("the file in the release folder")
}

fn archive(dir: &Path) -> PathBuf {
    find(dir, |n| {
        n.ends_with(".tar.gz") && !n.ends_with("-debug.tar.gz")
    })
}

fn statement_path(dir: &Path) -> PathBuf {
    find(dir, |n| n.ends_with(".intoto.json"))
}

fn rewrite_sums(dir: &Path) {
    let st = Command::new("sh")
        .arg("-c")
        .arg("sha256sum portable-redis-* > SHA256SUMS")
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_signed_release_passes_with_its_key_and_names_what_it_checked() {
    let s = signed();
    let (code, report) = verify_release(&s.dir, Some(&s.public));
    assert_eq!((code, failures(&report)), (0, vec![]), "{report:#}");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for c in ["sums", "signature", "provenance", "verify"] {
        assert!(checks.contains(&c), "no {c} check: {report:#}");
    }
    assert!(
        report.to_string().contains("Good \\\"file\\\" signature"),
        "{report:#}"
    );

    // The provenance: both archives by hash, the pins and patches as inputs.
    let statement: Value =
        serde_json::from_slice(&fs::read(statement_path(&s.dir)).unwrap()).unwrap();
    assert_eq!(statement["subject"].as_array().unwrap().len(), 2);
    let inputs: Vec<&str> = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    let series = fs::read_to_string(repo_root().join("patches/redis/7.0/series")).unwrap();
    for p in series
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = format!("patches/redis/7.0/{p}");
        assert!(inputs.contains(&name.as_str()), "{p}: {inputs:?}");
    }
    for i in [
        "redis-7.0.15",
        "openssl-3.5.7",
        "vendor/advisories.toml",
        "policy/x86_64-linux-gnu.2.11.toml",
    ] {
        assert!(inputs.contains(&i), "{i}: {inputs:?}");
    }

    // Without --key the signature is not checked, and the report says so.
    let (code, report) = verify_release(&s.dir, None);
    assert_eq!(code, 0, "{report:#}");
    assert!(report.to_string().contains("not checked: pass --key"));
}

#[test]
fn one_byte_changed_in_an_archive_fails_the_sums() {
    let dir = copy_of("tampered-archive");
    let a = archive(&dir);
    let mut bytes = fs::read(&a).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&a, bytes).unwrap();
    let (code, report) = verify_release(&dir, Some(&signed().public));
    assert_eq!(code, 1, "{report:#}");
    let name = a.file_name().unwrap().to_string_lossy().into_owned();
    let f = failures(&report);
    assert!(
        f.iter()
            .any(|(c, s, m)| c == "sums" && *s == name && m.contains("the file changed after")),
        "{f:#?}"
    );
}

#[test]
fn a_sha256sums_rewritten_to_match_a_changed_archive_fails_the_signature() {
    let dir = copy_of("swapped-sums");
    let a = archive(&dir);
    let mut bytes = fs::read(&a).unwrap();
    let near_end = bytes.len() - 100;
    bytes[near_end] ^= 0x01;
    fs::write(&a, bytes).unwrap();
    rewrite_sums(&dir);
    let (code, report) = verify_release(&dir, Some(&signed().public));
    assert_eq!(code, 1, "{report:#}");
    let f = failures(&report);
    assert!(!f.iter().any(|(c, _, _)| c == "sums"), "{f:#?}");
    assert!(
        f.iter().any(
            |(c, _, m)| c == "signature" && m.contains("is not a signature of this SHA256SUMS")
        ),
        "{f:#?}"
    );
    // The provenance names the archive's real hash, too.
    assert!(
        f.iter()
            .any(|(c, _, m)| c == "provenance" && m.contains("has sha256")),
        "{f:#?}"
    );
}

#[test]
fn a_wrong_key_fails_the_signature() {
    let s = signed();
    let (code, report) = verify_release(&s.dir, Some(&s.other));
    assert_eq!(code, 1, "{report:#}");
    let f = failures(&report);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, "signature");
    assert!(f[0].2.contains("someone-else.pub"), "{f:#?}");
    // A private key is not a public key: said as such.
    let (code, report) = verify_release(&s.dir, Some(&s.key));
    assert_eq!(code, 1);
    assert!(
        report.to_string().contains("is not an OpenSSH public key"),
        "{report:#}"
    );
}

#[test]
fn provenance_whose_inputs_are_not_the_checkouts_fails_even_when_signed() {
    let s = signed();
    let dir = copy_of("foreign-provenance");
    let path = statement_path(&dir);
    let mut statement: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array_mut()
        .unwrap();
    let patch = deps
        .iter_mut()
        .find(|d| {
            d["name"]
                .as_str()
                .unwrap()
                .starts_with("patches/redis/7.0/0003")
        })
        .unwrap();
    patch["digest"]["sha256"] = Value::String("0".repeat(64));
    fs::write(&path, serde_json::to_vec_pretty(&statement).unwrap()).unwrap();
    rewrite_sums(&dir);
    // Signed again with the publisher's key: sums and signature hold.
    fs::remove_file(dir.join("SHA256SUMS.sig")).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(&s.key)
        .arg("SHA256SUMS")
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    let (code, report) = verify_release(&dir, Some(&s.public));
    assert_eq!(code, 1, "{report:#}");
    let f = failures(&report);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].0, "provenance");
    assert!(
        f[0].2.contains(
            "patches/redis/7.0/0003-cluster-config-loader.patch: the provenance has sha256:000"
        ),
        "{f:#?}"
    );
}
