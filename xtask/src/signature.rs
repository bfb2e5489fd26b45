//! The signature of a release folder's `SHA256SUMS`: OpenSSH's `ssh-keygen
//! -Y sign` format (`SHA256SUMS.sig`, namespace `file`), made with a key the
//! publisher holds (a private key file, or its public half with the key in
//! ssh-agent) and checked against the publisher's public key.
//!
//! Why OpenSSH signatures: every machine a release is downloaded to has
//! ssh-keygen, and an SSH key is what publishers already hold and publish;
//! OpenSSH 8.1 (2019) or later verifies, so the check happens where the
//! archive is fetched (or with `cargo xtask verify-release`), not on the
//! glibc 2.11 host it is installed on, whose OpenSSH (5.3 on CentOS 6) knows
//! no signatures and whose OpenSSL is too old for ed25519. minisign would be
//! one more program to install everywhere.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use crate::fsutil;

pub const SUMS: &str = "SHA256SUMS";
pub const SIG: &str = "SHA256SUMS.sig";
/// `ssh-keygen -Y`'s namespace: what the signature is for.
pub const NAMESPACE: &str = "file";
/// The principal written into the allowed-signers file of a check.
pub const PRINCIPAL: &str = "portable-redis";

fn ssh_keygen() -> Result<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ssh-keygen"))
            .find(|p| p.is_file())
    });
    found.context(
        "ssh-keygen is not installed: install OpenSSH's client (apt-get install openssh-client)",
    )
}

/// Refuse a key that cannot sign before anything is built.
pub fn check_key(key: &Path) -> Result<()> {
    ssh_keygen()?;
    fs::metadata(key).with_context(|| {
        format!(
            "--sign {}: no such key; make one with ssh-keygen -t ed25519 -f {}",
            key.display(),
            key.display()
        )
    })?;
    Ok(())
}

/// Sign `dir/SHA256SUMS` with `key` into `dir/SHA256SUMS.sig` (written in a
/// scratch folder, then renamed into place).
pub fn sign(dir: &Path, key: &Path, scratch: &Path) -> Result<()> {
    let staging = fsutil::Staging::beside(&scratch.join("sign"))?;
    let copy = staging.path().join(SUMS);
    fs::copy(dir.join(SUMS), &copy)?;
    let out = Command::new(ssh_keygen()?)
        .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
        .arg(key)
        .arg(&copy)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("running ssh-keygen -Y sign")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen could not sign {} with {}: {}",
            dir.join(SUMS).display(),
            key.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let sig = fs::read(staging.path().join(SIG)).context("ssh-keygen wrote no signature")?;
    fsutil::write_atomic(&dir.join(SIG), &sig)
}

/// Whether `sig` is a well-formed signature of `sums` by any key (for
/// finding a stale signature; no key is trusted by this).
pub fn matches(sums: &Path, sig: &Path) -> bool {
    let Ok(tool) = ssh_keygen() else { return false };
    let Ok(data) = fs::File::open(sums) else {
        return false;
    };
    Command::new(tool)
        .args(["-Y", "check-novalidate", "-n", NAMESPACE, "-s"])
        .arg(sig)
        .stdin(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Check that `sig` signs `sums` with the public key in `public` (an
/// OpenSSH `.pub` file): ssh-keygen's own confirmation, or an error that
/// says what is wrong.
pub fn verify(sums: &Path, sig: &Path, public: &Path, scratch: &Path) -> Result<String> {
    let key = fs::read_to_string(public)
        .with_context(|| format!("reading the public key {}", public.display()))?;
    let key = key
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} holds no public key", public.display()))?;
    if !key.starts_with("ssh-") && !key.starts_with("ecdsa-") && !key.starts_with("sk-") {
        bail!(
            "{} is not an OpenSSH public key (a line like `ssh-ed25519 AAAA… name`); pass the .pub file",
            public.display()
        );
    }
    if !sig.is_file() {
        bail!(
            "{} is missing: the release is not signed (dist --sign KEY signs it)",
            sig.display()
        );
    }
    fs::create_dir_all(scratch)?;
    let allowed = scratch.join(format!("allowed_signers.{}", std::process::id()));
    {
        let mut f = fs::File::create(&allowed)?;
        writeln!(f, "{PRINCIPAL} {key}")?;
    }
    let out = Command::new(ssh_keygen()?)
        .args(["-Y", "verify", "-n", NAMESPACE, "-I", PRINCIPAL, "-f"])
        .arg(&allowed)
        .arg("-s")
        .arg(sig)
        .stdin(fs::File::open(sums).with_context(|| format!("reading {}", sums.display()))?)
        .output()
        .context("running ssh-keygen -Y verify")?;
    fs::remove_file(&allowed).ok();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        return Ok(said.trim().to_string());
    }
    bail!(
        "{} is not a signature of this {} by the key in {}: ssh-keygen says \"{}\"",
        sig.display(),
        SUMS,
        public.display(),
        said.trim()
    )
}
