//! The target host's `libgcc_s.so.1`, made from the build machine's gcc.
//!
//! glibc 2.11 loads `libgcc_s.so.1` when a thread is cancelled or exits
//! (`pthread_cancel`, `pthread_exit`: `_Unwind_ForcedUnwind`,
//! `_Unwind_Resume`, `_Unwind_GetCFA`, `__gcc_personality_v0`) and for
//! `backtrace` (`_Unwind_Backtrace`, `_Unwind_GetIP`: Redis's crash report).
//! Every system of the time has one; the build machine's needs glibc 2.35.
//! The host's is the build machine's unwinder, `libgcc_eh.a`, linked anew
//! against the built glibc:
//!
//! - gcc builds `libgcc_eh.a` with every symbol hidden (it is meant to be
//!   linked into one program), so [`unhide`] makes its defined globals
//!   default-visible again;
//! - the version script gives each symbol the version the build machine's
//!   `libgcc_s.so.1` defines it under ([`version_script`]) and keeps the
//!   rest local, among them the `_dl_find_object` the shim supplies;
//! - [`check`] proves the result exports what glibc looks up.

use std::{collections::BTreeMap, fs, path::Path};

use anyhow::{bail, Context, Result};
use object::{
    elf,
    read::{
        archive::ArchiveFile,
        elf::{ElfFile64, FileHeader, SectionHeader, Sym},
    },
    Endianness,
};

use elfcheck::{elf as elf_facts, GlibcVersion};

/// What glibc 2.11 looks up in `libgcc_s.so.1` (nptl's `unwind-forcedunwind.c`
/// and `unwind-resume.c`, and `backtrace.c`).
pub const REQUIRED: &[&str] = &[
    "_Unwind_ForcedUnwind",
    "_Unwind_Resume",
    "_Unwind_GetCFA",
    "__gcc_personality_v0",
    "_Unwind_Backtrace",
    "_Unwind_GetIP",
];

/// Make every defined global or weak symbol of a relocatable ELF object
/// default-visible (`STV_HIDDEN` cleared in place), and return the names of
/// the object's defined globals.
pub fn unhide(data: &mut [u8]) -> Result<Vec<String>> {
    let mut patch = Vec::new();
    let mut names = Vec::new();
    {
        let file = ElfFile64::<Endianness>::parse(&*data).context("not a 64-bit ELF object")?;
        let endian = file.endian();
        let header = file.elf_header();
        if header.e_type(endian) != elf::ET_REL {
            bail!(
                "not a relocatable object (ELF type {})",
                header.e_type(endian)
            );
        }
        let sections = header.sections(endian, &*data)?;
        for section in sections.iter() {
            if section.sh_type(endian) != elf::SHT_SYMTAB {
                continue;
            }
            let symbols = sections.symbols(endian, &*data, elf::SHT_SYMTAB)?;
            let base = section.sh_offset(endian) as usize;
            let size = std::mem::size_of::<elf::Sym64<Endianness>>();
            for (i, sym) in symbols.symbols().iter().enumerate() {
                let bind = sym.st_bind();
                if sym.st_shndx(endian) == elf::SHN_UNDEF
                    || !(bind == elf::STB_GLOBAL || bind == elf::STB_WEAK)
                {
                    continue;
                }
                names.push(
                    String::from_utf8_lossy(sym.name(endian, symbols.strings())?).into_owned(),
                );
                if sym.st_visibility() == elf::STV_HIDDEN {
                    // st_other is the sixth byte of an Elf64_Sym.
                    patch.push(base + i * size + 5);
                }
            }
        }
    }
    for offset in patch {
        let other = data
            .get_mut(offset)
            .context("symbol table outside the file")?;
        *other &= !0x3;
    }
    Ok(names)
}

/// Extract the members of `archive` into `dir`, each made default-visible
/// by [`unhide`]; return the defined globals of all of them.
pub fn extract_unhidden(archive: &Path, dir: &Path) -> Result<Vec<String>> {
    let data = fs::read(archive).with_context(|| format!("reading {}", archive.display()))?;
    let ar = ArchiveFile::parse(&*data)
        .with_context(|| format!("{} is not an ar archive", archive.display()))?;
    fs::create_dir_all(dir)?;
    let mut names = Vec::new();
    for member in ar.members() {
        let member = member.with_context(|| format!("reading {}", archive.display()))?;
        let name = String::from_utf8_lossy(member.name()).into_owned();
        let mut bytes = member.data(&*data)?.to_vec();
        names.extend(unhide(&mut bytes).with_context(|| format!("{}({name})", archive.display()))?);
        fs::write(dir.join(&name), bytes)?;
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// A linker version script: each of `defined` that the build machine's
/// `libgcc_s.so.1` (`reference`) exports, under that library's version;
/// everything else local.
pub fn version_script(reference: &[u8], defined: &[String]) -> Result<String> {
    let facts = elf_facts::read(reference)?;
    let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &facts.exports {
        if let Some(v) = &e.version {
            if !e.hidden
                && defined.contains(&e.name)
                && !nodes.values().flatten().any(|n| n == &e.name)
            {
                nodes.entry(v.clone()).or_default().push(e.name.clone());
            }
        }
    }
    for r in REQUIRED {
        if !nodes.values().flatten().any(|n| n == r) {
            bail!(
                "{r} is not both in libgcc_eh.a and exported by the build machine's libgcc_s.so.1"
            );
        }
    }
    let mut out = String::new();
    for (i, (version, mut names)) in nodes.into_iter().enumerate() {
        names.sort();
        out.push_str(&format!("{version} {{\n  global:\n"));
        for n in names {
            out.push_str(&format!("    {n};\n"));
        }
        if i == 0 {
            out.push_str("  local:\n    *;\n");
        }
        out.push_str("};\n");
    }
    Ok(out)
}

/// The built `libgcc_s.so.1` exports what glibc looks up and needs no
/// glibc newer than `max`.
pub fn check(path: &Path, max: GlibcVersion) -> Result<()> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let facts = elf_facts::read(&data).with_context(|| format!("reading {}", path.display()))?;
    for r in REQUIRED {
        if !facts.exports.iter().any(|e| e.name == *r && !e.hidden) {
            bail!(
                "{} does not export {r}: glibc's pthread_cancel or backtrace would abort",
                path.display()
            );
        }
    }
    if let Some(v) = facts
        .version_needs
        .iter()
        .map(|n| n.version.as_str())
        .filter(|v| v.starts_with("GLIBC_"))
        .find(|v| !matches!(GlibcVersion::from_symbol_version(v), Some(n) if n <= max))
    {
        bail!("{} needs {v}", path.display());
    }
    if facts.exports.iter().any(|e| e.name == "_dl_find_object") {
        bail!(
            "{} exports _dl_find_object: it must stay local",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn compile(dir: &Path, src: &str) -> Vec<u8> {
        fs::write(dir.join("t.c"), src).unwrap();
        let st = Command::new("gcc")
            .args(["-c", "-fPIC", "-o"])
            .arg(dir.join("t.o"))
            .arg(dir.join("t.c"))
            .status()
            .unwrap();
        assert!(st.success());
        fs::read(dir.join("t.o")).unwrap()
    }

    fn visibility(data: &[u8], name: &str) -> u8 {
        let file = ElfFile64::<Endianness>::parse(data).unwrap();
        let endian = file.endian();
        let sections = file.elf_header().sections(endian, data).unwrap();
        let symbols = sections.symbols(endian, data, elf::SHT_SYMTAB).unwrap();
        symbols
            .symbols()
            .iter()
            .find(|s| s.name(endian, symbols.strings()).unwrap() == name.as_bytes())
            .unwrap()
            .st_visibility()
    }

    #[test]
    fn hidden_definitions_become_default_and_the_rest_is_untouched() {
        let d = tempfile::tempdir().unwrap();
        let mut o = compile(
            d.path(),
            "__attribute__((visibility(\"hidden\"))) int f(void) { return 1; }\n\
             __attribute__((visibility(\"protected\"))) int g(void) { return 2; }\n\
             extern int u(void) __attribute__((visibility(\"hidden\")));\n\
             static int s(void) { return u(); }\n\
             int h(void) { return s(); }\n",
        );
        assert_eq!(visibility(&o, "f"), elf::STV_HIDDEN);
        let mut names = unhide(&mut o).unwrap();
        names.sort();
        assert_eq!(names, ["f", "g", "h"]);
        assert_eq!(visibility(&o, "f"), elf::STV_DEFAULT);
        assert_eq!(visibility(&o, "g"), elf::STV_PROTECTED);
        // An undefined hidden reference stays as it was.
        assert_eq!(visibility(&o, "u"), elf::STV_HIDDEN);
    }

    #[test]
    fn a_shared_library_is_not_unhidden() {
        let data = fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut copy = data.clone();
        let e = format!("{:#}", unhide(&mut copy).unwrap_err());
        assert!(e.contains("not a relocatable object"), "{e}");
        assert_eq!(copy, data);
    }

    #[test]
    fn the_version_script_uses_the_reference_versions_and_names_what_is_missing() {
        let reference = fs::read("/lib/x86_64-linux-gnu/libgcc_s.so.1").unwrap();
        let all: Vec<String> = REQUIRED
            .iter()
            .map(|s| s.to_string())
            .chain(["_dl_find_object".to_string()])
            .collect();
        let script = version_script(&reference, &all).unwrap();
        assert!(script.contains("GCC_3.0 {"), "{script}");
        assert!(script.contains("    _Unwind_Resume;"), "{script}");
        assert!(script.contains("local:\n    *;"), "{script}");
        assert!(!script.contains("_dl_find_object"), "{script}");
        let e = format!("{:#}", version_script(&reference, &all[1..]).unwrap_err());
        assert!(e.contains("_Unwind_ForcedUnwind"), "{e}");
    }
}
