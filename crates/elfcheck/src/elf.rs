//! What verify needs to know about one ELF file, read with the `object` crate.

use anyhow::{bail, Context, Result};
use object::{
    elf::{self, FileHeader64},
    read::elf::{Dyn, ElfFile64, FileHeader, Note, ProgramHeader, SectionHeader, Sym},
    Endian, Endianness,
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
    /// `VER_FLG_WEAK`: the loader does not fail when the version is missing.
    pub weak: bool,
}

/// A defined dynamic symbol and the version it is defined under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    /// `None` for an unversioned (global) definition.
    pub version: Option<String>,
    /// `sym@VER` rather than `sym@@VER`: only versioned references bind to it.
    pub hidden: bool,
}

/// The `.note.ABI-tag` note: the oldest kernel the binary claims to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbiTag {
    /// 0 = Linux.
    pub os: u32,
    pub kernel: [u32; 3],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfKind {
    /// ET_EXEC: a fixed-address executable.
    Executable,
    /// ET_DYN with an interpreter, or with DF_1_PIE and none (a static
    /// PIE): a position-independent executable.
    Pie,
    /// ET_DYN without an interpreter or DF_1_PIE.
    SharedObject,
    Other,
}

/// The CPU architectures the reader knows (`e_machine`), by the names zig's
/// targets start with.
pub const MACHINES: [(u16, &str); 2] = [(elf::EM_X86_64, "x86_64"), (elf::EM_AARCH64, "aarch64")];

#[derive(Debug, Clone)]
pub struct ElfFacts {
    /// `x86_64` or `aarch64` (see [`MACHINES`]).
    pub machine: &'static str,
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
    /// Version names the file defines (`.gnu.version_d`), for libraries.
    pub version_defs: Vec<String>,
    /// All dynamic symbols that are defined in the file.
    pub exports: Vec<Export>,
    /// Notes the loader sees (PT_NOTE segments; SHT_NOTE sections when
    /// there are none): (owner, type, descriptor).
    pub notes: Vec<(String, u32, Vec<u8>)>,
    /// `GNU_PROPERTY_X86_ISA_1_NEEDED` from `.note.gnu.property`.
    pub x86_isa_needed: Option<u32>,
    pub abi_tag: Option<AbiTag>,
    /// Section names, for stripped/unstripped checks.
    pub sections: Vec<String>,
}

#[cfg(test)]
impl ElfFacts {
    /// A hardened x86_64 PIE that needs `needed` and imports nothing: the
    /// start of the synthetic facts unit tests build on.
    pub(crate) fn test_pie(needed: &[&str]) -> ElfFacts {
        ElfFacts {
            machine: "x86_64",
            kind: ElfKind::Pie,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            needed: needed.iter().map(|n| n.to_string()).collect(),
            rpath: None,
            runpath: None,
            bind_now: true,
            flags_1_pie: true,
            has_relro: true,
            stack_executable: Some(false),
            textrel: false,
            relr: false,
            imports: Vec::new(),
            version_needs: Vec::new(),
            version_defs: Vec::new(),
            exports: Vec::new(),
            notes: Vec::new(),
            x86_isa_needed: None,
            abi_tag: None,
            sections: Vec::new(),
        }
    }
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
    let e_machine = header.e_machine(endian);
    let Some(&(_, machine)) = MACHINES.iter().find(|(m, _)| *m == e_machine) else {
        bail!("not an x86_64 or aarch64 ELF file (machine {e_machine})");
    };
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
        machine,
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
        version_defs: Vec::new(),
        exports: Vec::new(),
        notes: Vec::new(),
        x86_isa_needed: None,
        abi_tag: None,
        sections: Vec::new(),
    };

    for ph in segments {
        if let Some(mut notes) = ph.notes(endian, data)? {
            while let Some(note) = notes.next()? {
                read_note(&mut facts, &note, endian)?;
            }
        }
    }
    let from_segments = !facts.notes.is_empty();

    for section in sections.iter() {
        facts
            .sections
            .push(cstr(sections.section_name(endian, section).unwrap_or(b"")));
        if let Some((dynamic, link)) = section.dynamic(endian, data)? {
            let strings = sections.strings(endian, data, link)?;
            for d in dynamic {
                let string = || d.string(endian, strings).map(cstr).unwrap_or_default();
                read_dynamic(&mut facts, d.d_tag(endian) as u32, d.d_val(endian), string);
            }
        }
        if from_segments {
            continue;
        }
        if let Some(mut notes) = section.notes(endian, data)? {
            while let Some(note) = notes.next()? {
                read_note(&mut facts, &note, endian)?;
            }
        }
    }

    // A static PIE has no interpreter: it relocates itself, and DF_1_PIE
    // tells it from a shared library.
    if facts.kind == ElfKind::SharedObject && facts.flags_1_pie {
        facts.kind = ElfKind::Pie;
    }
    read_versions(&mut facts, &sections, endian, data)?;
    read_symbols(&mut facts, &sections, endian, data)?;
    Ok(facts)
}

/// One `.dynamic` entry: needed libraries, search paths, binding and
/// relocation flags.
fn read_dynamic(facts: &mut ElfFacts, tag: u32, val: u64, string: impl Fn() -> String) {
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

type Sections<'data> = object::read::elf::SectionTable<'data, FileHeader64<Endianness>>;

/// The version needs (`.gnu.version_r`) and definitions (`.gnu.version_d`).
fn read_versions(
    facts: &mut ElfFacts,
    sections: &Sections,
    endian: Endianness,
    data: &[u8],
) -> Result<()> {
    if let Some((needs, link)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        let mut needs = needs;
        while let Some((need, mut aux)) = needs.next()? {
            let library = cstr(need.file(endian, strings)?);
            while let Some(a) = aux.next()? {
                facts.version_needs.push(VersionNeed {
                    library: library.clone(),
                    version: cstr(a.name(endian, strings)?),
                    weak: a.vna_flags.get(endian) & elf::VER_FLG_WEAK != 0,
                });
            }
        }
    }

    if let Some((mut defs, link)) = sections.gnu_verdef(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        while let Some((def, mut aux)) = defs.next()? {
            // The base definition names the file itself, not a version.
            if def.vd_flags.get(endian) & elf::VER_FLG_BASE != 0 {
                continue;
            }
            if let Some(a) = aux.next()? {
                facts.version_defs.push(cstr(a.name(endian, strings)?));
            }
        }
    }
    Ok(())
}

/// The dynamic symbols: imports (with the version and library each is bound
/// to, copy relocations included) and exports.
fn read_symbols(
    facts: &mut ElfFacts,
    sections: &Sections,
    endian: Endianness,
    data: &[u8],
) -> Result<()> {
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
            let (version, library, hidden) = match &versions {
                Some(v) => {
                    let index = v.version_index(endian, index);
                    let ver = v.version(index)?;
                    (
                        ver.map(|ver| cstr(ver.name())),
                        ver.and_then(|ver| ver.file()).map(cstr),
                        index.is_hidden(),
                    )
                }
                None => (None, None, false),
            };
            if library.is_some() {
                // Defined here under a version another file provides: a
                // copy relocation, which the loader resolves like an import.
                facts.imports.push(Import {
                    name,
                    version,
                    library,
                    weak: sym.st_bind() == elf::STB_WEAK,
                });
                continue;
            }
            facts.exports.push(Export {
                name,
                version,
                hidden,
            });
        }
    }
    Ok(())
}

fn read_note(
    facts: &mut ElfFacts,
    note: &Note<FileHeader64<Endianness>>,
    endian: Endianness,
) -> Result<()> {
    let owner = cstr(note.name());
    let kind = note.n_type(endian);
    let desc = note.desc();
    if owner == "GNU" && kind == elf::NT_GNU_ABI_TAG && desc.len() >= 16 {
        let word = |i: usize| {
            let b = [
                desc[4 * i],
                desc[4 * i + 1],
                desc[4 * i + 2],
                desc[4 * i + 3],
            ];
            endian.read_u32_bytes(b)
        };
        facts.abi_tag = Some(AbiTag {
            os: word(0),
            kernel: [word(1), word(2), word(3)],
        });
    }
    if let Some(mut props) = note.gnu_properties(endian) {
        while let Some(prop) = props.next()? {
            // Property numbers above 0xc0000000 are per architecture.
            if facts.machine == "x86_64" && prop.pr_type() == elf::GNU_PROPERTY_X86_ISA_1_NEEDED {
                let bits = prop.data_u32(endian)?;
                facts.x86_isa_needed = Some(facts.x86_isa_needed.unwrap_or(0) | bits);
            }
        }
    }
    facts.notes.push((owner, kind, desc.to_vec()));
    Ok(())
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}
