//! The rule ids: one enum for the code, the report, the JSON schema's rule
//! list and README's rule table (a unit test keeps the last two equal to it).

use std::fmt;

use serde::{Serialize, Serializer};

/// Every rule a finding can name, in report order; serialized as its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    GlibcVersion,
    VersionName,
    AbiSymbol,
    UnversionedSymbol,
    NeededLibraries,
    StaticOpenssl,
    OpensslVersion,
    MemcpyPin,
    Interpreter,
    Rpath,
    Relr,
    IsaLevel,
    AbiTag,
    Pie,
    Relro,
    NxStack,
    Textrel,
    StackProtector,
    Fortify,
    RuntimeShadow,
    TargetHost,
}

impl Rule {
    pub const ALL: [Rule; 21] = [
        Rule::GlibcVersion,
        Rule::VersionName,
        Rule::AbiSymbol,
        Rule::UnversionedSymbol,
        Rule::NeededLibraries,
        Rule::StaticOpenssl,
        Rule::OpensslVersion,
        Rule::MemcpyPin,
        Rule::Interpreter,
        Rule::Rpath,
        Rule::Relr,
        Rule::IsaLevel,
        Rule::AbiTag,
        Rule::Pie,
        Rule::Relro,
        Rule::NxStack,
        Rule::Textrel,
        Rule::StackProtector,
        Rule::Fortify,
        Rule::RuntimeShadow,
        Rule::TargetHost,
    ];

    /// The id reports and docs use: `glibc-version`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::GlibcVersion => "glibc-version",
            Rule::VersionName => "version-name",
            Rule::AbiSymbol => "abi-symbol",
            Rule::UnversionedSymbol => "unversioned-symbol",
            Rule::NeededLibraries => "needed-libraries",
            Rule::StaticOpenssl => "static-openssl",
            Rule::OpensslVersion => "openssl-version",
            Rule::MemcpyPin => "memcpy-pin",
            Rule::Interpreter => "interpreter",
            Rule::Rpath => "rpath",
            Rule::Relr => "relr",
            Rule::IsaLevel => "isa-level",
            Rule::AbiTag => "abi-tag",
            Rule::Pie => "pie",
            Rule::Relro => "relro",
            Rule::NxStack => "nx-stack",
            Rule::Textrel => "textrel",
            Rule::StackProtector => "stack-protector",
            Rule::Fortify => "fortify",
            Rule::RuntimeShadow => "runtime-shadow",
            Rule::TargetHost => "target-host",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn repo_file(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn ids() -> BTreeSet<String> {
        Rule::ALL.iter().map(|r| r.id().to_string()).collect()
    }

    #[test]
    fn the_id_is_what_the_report_says_and_every_rule_is_listed_once() {
        for r in Rule::ALL {
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.id().into())
            );
            assert_eq!(Rule::from_id(r.id()), Some(r));
        }
        assert_eq!(ids().len(), Rule::ALL.len());
        assert_eq!(Rule::from_id("no-such-rule"), None);
    }

    #[test]
    fn the_json_schema_lists_exactly_the_rules() {
        let schema: serde_json::Value =
            serde_json::from_str(&repo_file("docs/verify-report.schema.json")).unwrap();
        let listed: Vec<String> = schema
            .pointer("/$defs/violation/properties/rule/enum")
            .and_then(|v| v.as_array())
            .expect("$defs.violation.properties.rule.enum")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(listed.len(), Rule::ALL.len(), "{listed:?}");
        assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), ids());
    }

    /// README's "verify" table: the first cell of each row names one or more
    /// rules as `` `id` ``.
    #[test]
    fn the_readme_rule_table_lists_exactly_the_rules() {
        let readme = repo_file("README.md");
        let section = readme
            .split("\n## verify\n")
            .nth(1)
            .expect("README has a `## verify` section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut listed = Vec::new();
        let mut in_table = false;
        for line in section.lines() {
            if line.starts_with("| rule |") {
                in_table = true;
                continue;
            }
            if !in_table || line.starts_with("|---") {
                continue;
            }
            let Some(cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
                break;
            };
            listed.extend(cell.split('`').skip(1).step_by(2).map(str::to_string));
        }
        assert_eq!(listed.len(), Rule::ALL.len(), "{listed:?}");
        assert_eq!(listed.into_iter().collect::<BTreeSet<_>>(), ids());
    }
}
