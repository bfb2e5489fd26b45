//! The commands on the pinned sources: vendor, patch, hash and upgrade.

use anyhow::Result;

use super::{
    flags::{HashArgs, PatchArgs, UpgradeArgs, VendorArgs},
    Outcome,
};
use crate::{
    patch_cmd::{self, PatchOptions, PatchOutcome},
    project::Project,
    security,
    upgrade::{self, UpgradeOptions},
    vendor::{self, VendorOptions},
};

impl VendorArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let source = self.source;
        vendor::run(project, &source.vendor_options(), source.redis.as_deref())?;
        Ok(Outcome::Pass)
    }
}

impl HashArgs {
    pub fn run(self, _project: &Project) -> Result<Outcome> {
        vendor::hash(&self.dir)?;
        Ok(Outcome::Pass)
    }
}

impl PatchArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let opts = PatchOptions {
            redis: self.source.redis.clone(),
            vendor: self.source.vendor_options(),
            check: self.check,
            series: self.series,
        };
        match patch_cmd::run(project, &opts)? {
            PatchOutcome::Rehearsed(rehearsal) => {
                print!("{rehearsal}");
                Ok(Outcome::of(rehearsal.failed() == 0))
            }
            PatchOutcome::Applied(patched) => {
                for r in &patched.reports {
                    println!("{}: {}", r.patch, r.status());
                }
                println!("{}", patched.dir.display());
                Ok(Outcome::Pass)
            }
        }
    }
}

impl UpgradeArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let vendor = VendorOptions {
            mirror: self.mirror,
            offline: self.offline,
        };
        if self.security {
            return refresh_security(project, self.component, &self.version, self.write, &vendor);
        }
        let opts = UpgradeOptions {
            component: self.component,
            version: self.version,
            write: self.write,
            suites: self.suites,
            released: self.released,
            vendor,
        };
        let outcome = upgrade::run(project, &opts)?;
        print!("{outcome}");
        println!("{}", outcome.verdict());
        Ok(outcome.outcome())
    }
}

/// `upgrade --security`: the pinned version's newest security queue.
fn refresh_security(
    project: &Project,
    component: crate::pins_edit::Component,
    version: &str,
    write: bool,
    vendor: &VendorOptions,
) -> Result<Outcome> {
    let r = security::refresh(project, component, version, write, vendor)?;
    print!("{r}");
    let failed = r.failed();
    let last = if r.written {
        format!(
            "wrote the {} queue into vendor/sources.toml; record the CVEs its new patches fix in \
             vendor/advisories.toml and check with `cargo xtask audit`",
            r.to
        )
    } else if failed > 0 {
        format!(
            "{failed} patch(es) fail; nothing was written: port them into our series (say which \
             CVE each carries)"
        )
    } else if r.from.as_deref() == Some(r.to.as_str()) {
        "nothing to do".to_string()
    } else {
        format!(
            "nothing was written. To accept: `cargo xtask upgrade {component} {version} \
             --security --write`"
        )
    };
    println!("{last}");
    Ok(Outcome::of(failed == 0))
}
