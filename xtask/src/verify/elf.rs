//! What verify needs to know about one ELF file, read with the `object` crate.

use anyhow::{bail, Context, Result};
use object::{
    elf,
    read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader, SectionHeader, Sym},
    Endianness,
};

// Not in `object` yet: the DT_RELR family (glibc 2.36 packed relocations).
const DT_RELRSZ: u32 = 35;
const DT_RELR: u32 = 36;
const DT_RELRENT: u32 = 37;

/// An undefined dynamic symbol and the version need it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    /// e.g. `GLIBC_2.2.5`; `None` for an unversioned reference.
    pub version: Option<String>,
    /// The library the version need names (`libc.so.6`).
    pub library: Option<String>,
    pub weak: bool,
}

/// A `.gnu.version_r` entry: `library` needs `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionNeed {
    pub library: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// ET_EXEC: a fixed-address executable.
    Executable,
    /// ET_DYN with an interpreter: a position-independent executable.
    Pie,
    /// ET_DYN without an interpreter.
    SharedObject,
    Other,
}

#[derive(Debug, Clone)]
pub struct ElfFacts {
    pub kind: ElfKind,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    pub bind_now: bool,
    pub flags_1_pie: bool,
    pub has_relro: bool,
    /// `PT_GNU_STACK` flags; `None` when absent (the loader then assumes an executable stack).
    pub stack_executable: Option<bool>,
    pub textrel: bool,
    pub relr: bool,
    pub imports: Vec<Import>,
    pub version_needs: Vec<VersionNeed>,
    /// Names of all dynamic symbols that are defined in the file.
    pub exports: Vec<String>,
    /// Raw notes: (owner, type, descriptor) from SHT_NOTE sections.
    pub notes: Vec<(String, u32, Vec<u8>)>,
    /// Section names, for stripped/unstripped checks.
    pub sections: Vec<String>,
}

/// Parse `data` as a 64-bit little-endian ELF file.
pub fn read(data: &[u8]) -> Result<ElfFacts> {
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        bail!("not an ELF file");
    }
    let file =
        ElfFile64::<Endianness>::parse(data).context("not a 64-bit ELF file object can parse")?;
    let endian = file.endian();
    let header = file.elf_header();
    if header.e_machine(endian) != elf::EM_X86_64 {
        bail!(
            "not an x86_64 ELF file (machine {})",
            header.e_machine(endian)
        );
    }
    let sections = header.sections(endian, data)?;
    let segments = header.program_headers(endian, data)?;

    let mut interpreter = None;
    let mut has_relro = false;
    let mut stack_executable = None;
    for ph in segments {
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                let bytes = ph
                    .data(endian, data)
                    .map_err(|_| anyhow::anyhow!("bad PT_INTERP"))?;
                interpreter = Some(cstr(bytes));
            }
            elf::PT_GNU_RELRO => has_relro = true,
            elf::PT_GNU_STACK => stack_executable = Some(ph.p_flags(endian) & elf::PF_X != 0),
            _ => {}
        }
    }
    let kind = match header.e_type(endian) {
        elf::ET_EXEC => ElfKind::Executable,
        elf::ET_DYN if interpreter.is_some() => ElfKind::Pie,
        elf::ET_DYN => ElfKind::SharedObject,
        _ => ElfKind::Other,
    };

    let mut facts = ElfFacts {
        kind,
        interpreter,
        needed: Vec::new(),
        rpath: None,
        runpath: None,
        bind_now: false,
        flags_1_pie: false,
        has_relro,
        stack_executable,
        textrel: false,
        relr: false,
        imports: Vec::new(),
        version_needs: Vec::new(),
        exports: Vec::new(),
        notes: Vec::new(),
        sections: Vec::new(),
    };

    for section in sections.iter() {
        facts
            .sections
            .push(cstr(sections.section_name(endian, section).unwrap_or(b"")));
        if let Some((dynamic, link)) = section.dynamic(endian, data)? {
            let strings = sections.strings(endian, data, link)?;
            for d in dynamic {
                let tag = d.d_tag(endian) as u32;
                let val = d.d_val(endian);
                let string = || d.string(endian, strings).map(cstr).unwrap_or_default();
                match tag {
                    elf::DT_NEEDED => facts.needed.push(string()),
                    elf::DT_RPATH => facts.rpath = Some(string()),
                    elf::DT_RUNPATH => facts.runpath = Some(string()),
                    elf::DT_BIND_NOW => facts.bind_now = true,
                    elf::DT_FLAGS => {
                        if val & u64::from(elf::DF_BIND_NOW) != 0 {
                            facts.bind_now = true;
                        }
                        if val & u64::from(elf::DF_TEXTREL) != 0 {
                            facts.textrel = true;
                        }
                    }
                    elf::DT_FLAGS_1 => {
                        if val & u64::from(elf::DF_1_NOW) != 0 {
                            facts.bind_now = true;
                        }
                        if val & u64::from(elf::DF_1_PIE) != 0 {
                            facts.flags_1_pie = true;
                        }
                    }
                    elf::DT_TEXTREL => facts.textrel = true,
                    DT_RELRSZ | DT_RELR | DT_RELRENT => facts.relr = true,
                    _ => {}
                }
            }
        }
        if let Some(notes) = section.notes(endian, data)? {
            let mut notes = notes;
            while let Some(note) = notes.next()? {
                facts
                    .notes
                    .push((cstr(note.name()), note.n_type(endian), note.desc().to_vec()));
            }
        }
    }

    if let Some((needs, link)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        let mut needs = needs;
        while let Some((need, mut aux)) = needs.next()? {
            let library = cstr(need.file(endian, strings)?);
            while let Some(a) = aux.next()? {
                facts.version_needs.push(VersionNeed {
                    library: library.clone(),
                    version: cstr(a.name(endian, strings)?),
                });
            }
        }
    }

    let dynsym = sections.symbols(endian, data, elf::SHT_DYNSYM)?;
    let versions = sections.versions(endian, data)?;
    for (index, sym) in dynsym.enumerate() {
        let name = cstr(sym.name(endian, dynsym.strings()).unwrap_or(b""));
        if name.is_empty() {
            continue;
        }
        if sym.is_undefined(endian) {
            let (version, library) = match &versions {
                Some(v) => match v.version(v.version_index(endian, index))? {
                    Some(ver) => (Some(cstr(ver.name())), ver.file().map(cstr)),
                    None => (None, None),
                },
                None => (None, None),
            };
            facts.imports.push(Import {
                name,
                version,
                library,
                weak: sym.st_bind() == elf::STB_WEAK,
            });
        } else {
            facts.exports.push(name);
        }
    }
    Ok(facts)
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
