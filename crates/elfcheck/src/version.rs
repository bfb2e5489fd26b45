//! Typed versions: glibc's (`2.11`, `2.2.5`, as in `GLIBC_2.2.5`) and the
//! kernel's (`2.6.32`, as in the ABI-tag note).

use std::{fmt, str::FromStr};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A glibc version: `2.11`, or `2.2.5` for the versions with a third part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlibcVersion {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

impl GlibcVersion {
    pub const fn new(major: u16, minor: u16) -> GlibcVersion {
        GlibcVersion {
            major,
            minor,
            patch: 0,
        }
    }

    /// `GLIBC_2.2.5` → 2.2.5; `GLIBC_PRIVATE`, `GCC_3.0` → None.
    pub fn from_symbol_version(name: &str) -> Option<GlibcVersion> {
        name.strip_prefix("GLIBC_")?.parse().ok()
    }

    /// The symbol version naming it: `GLIBC_2.11`.
    pub fn symbol_version(&self) -> String {
        format!("GLIBC_{self}")
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.patch == 0 {
            write!(f, "{}.{}", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

impl FromStr for GlibcVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<GlibcVersion, String> {
        let bad = || format!("`{s}` is not a glibc version like 2.11 or 2.2.5");
        let parts = dotted(s, 2, 3).ok_or_else(bad)?;
        let part = |i: usize| -> Result<u16, String> {
            parts
                .get(i)
                .map_or(Ok(0), |p| u16::try_from(*p).map_err(|_| bad()))
        };
        Ok(GlibcVersion {
            major: part(0)?,
            minor: part(1)?,
            patch: part(2)?,
        })
    }
}

/// A Linux kernel version, `2.6.32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion(pub [u32; 3]);

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self.0;
        write!(f, "{a}.{b}.{c}")
    }
}

impl FromStr for KernelVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<KernelVersion, String> {
        let parts =
            dotted(s, 2, 3).ok_or_else(|| format!("`{s}` is not a kernel version like 2.6.32"))?;
        Ok(KernelVersion([
            parts[0],
            parts[1],
            parts.get(2).copied().unwrap_or(0),
        ]))
    }
}

/// `a.b[.c]` with `min..=max` numeric parts and nothing else.
fn dotted(s: &str, min: usize, max: usize) -> Option<Vec<u32>> {
    let parts = s
        .split('.')
        .map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                p.parse::<u32>().ok()
            }
        })
        .collect::<Option<Vec<u32>>>()?;
    (min..=max).contains(&parts.len()).then_some(parts)
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    };
}
string_serde!(GlibcVersion);
string_serde!(KernelVersion);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_order_numerically_and_print_as_glibc_names_them() {
        let v = |s: &str| s.parse::<GlibcVersion>().unwrap();
        assert!(v("2.2.5") < v("2.3"));
        assert!(v("2.3.4") < v("2.11"));
        assert!(v("2.11") < v("2.17"));
        assert_eq!(v("2.11"), GlibcVersion::new(2, 11));
        assert_eq!(v("2.2.5").to_string(), "2.2.5");
        assert_eq!(v("2.11").symbol_version(), "GLIBC_2.11");
        assert_eq!(
            GlibcVersion::from_symbol_version("GLIBC_2.2.5"),
            Some(v("2.2.5"))
        );
        for bad in ["GLIBC_PRIVATE", "GLIBC_ABI_DT_RELR", "GCC_3.0", "GLIBC_2"] {
            assert_eq!(GlibcVersion::from_symbol_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_versions_are_refused_with_the_text() {
        for bad in ["2", "2.x", "2..11", "2.11.1.1", "", " 2.11", "2.99999"] {
            let e = bad.parse::<GlibcVersion>().unwrap_err();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
        assert_eq!(
            "2.6.32".parse::<KernelVersion>(),
            Ok(KernelVersion([2, 6, 32]))
        );
        assert!("2.6.x".parse::<KernelVersion>().is_err());
        assert!(KernelVersion([3, 2, 0]) > KernelVersion([2, 6, 32]));
    }
}
