//! Downloads: one file from an address into place, never half-written.

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::{fsutil, treehash};

/// Download `url` to `dest` (through `dest.part`), checking a SHA-256 if given.
pub fn download(url: &str, dest: &Path, sha256: Option<&str>) -> Result<()> {
    let sh = Shell::new()?;
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let part = fsutil::temp_sibling(dest);
    let r = (|| -> Result<()> {
        let out = cmd!(sh, "curl --fail --silent --show-error --location --connect-timeout 20 --retry 2 -o {part} {url}")
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running curl for {url}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("{}", err.lines().last().unwrap_or("curl failed").trim());
        }
        if let Some(want) = sha256 {
            let got = treehash::sha256_file(&part)?;
            if got != want {
                bail!("{url}: SHA-256 is {got}, the signed index says {want}");
            }
        }
        fs::rename(&part, dest).with_context(|| format!("renaming to {}", dest.display()))
    })();
    if r.is_err() {
        let _ = fs::remove_file(&part);
    }
    r
}
