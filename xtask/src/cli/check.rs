//! The commands that check: verify, verify-release and audit.

use anyhow::Result;

use super::{
    flags::{AuditArgs, VerifyArgs, VerifyReleaseArgs},
    Outcome,
};
use crate::{audit, project::Project, verify, verify_release};

impl VerifyArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let inputs = verify::inputs(
            project,
            &verify::VerifyOptions {
                policy: self.policy,
                glibc: self.glibc,
                openssl: self.openssl,
                abilists: self.abilists,
                against: self.against,
                map: self.map,
            },
        )?;
        let report = verify::run(&self.files, self.json, &inputs)?;
        Ok(if report.unusable() {
            Outcome::Unusable
        } else {
            Outcome::of(report.passed())
        })
    }
}

impl VerifyReleaseArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let report = verify_release::run(project, &self.dir, self.key.as_deref())?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.human());
        }
        Ok(Outcome::of(report.passed))
    }
}

impl AuditArgs {
    pub fn run(self, project: &Project) -> Result<Outcome> {
        let report = audit::run(
            project,
            self.source.redis.as_deref(),
            &self.source.vendor_options(),
        )?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(Outcome::of(report.passed))
    }
}
