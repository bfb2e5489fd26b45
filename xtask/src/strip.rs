//! Stripping in Rust (the `object` crate's ELF builder): drop `.debug_*`,
//! `.symtab`/`.strtab` and `.comment`, keep everything the loader uses. Being
//! part of the pinned xtask, the result does not depend on the host's binutils.

use anyhow::{Context, Result};
use object::build::elf::{Builder, SectionData};

/// Sections a release binary does not need.
fn strippable(name: &[u8]) -> bool {
    name.starts_with(b".debug") || name.starts_with(b".zdebug") || name == b".comment"
}

/// The stripped image of an ELF file.
pub fn strip(data: &[u8]) -> Result<Vec<u8>> {
    let mut builder = Builder::read(data).context("reading the ELF file to strip it")?;
    for section in builder.sections.iter_mut() {
        let name = section.name.as_slice();
        let symtab = matches!(section.data, SectionData::Symbol | SectionData::String if name == b".symtab" || name == b".strtab");
        if strippable(name) || symtab {
            section.delete = true;
        }
    }
    for symbol in builder.symbols.iter_mut() {
        symbol.delete = true;
    }
    builder.delete_orphans();
    let mut out = Vec::new();
    builder
        .write(&mut out)
        .context("writing the stripped ELF file")?;
    Ok(out)
}

/// The GNU build-id (hex) of an ELF file, if it has one.
pub fn build_id(data: &[u8]) -> Result<Option<String>> {
    use object::Object;
    let file = object::File::parse(data).context("reading the ELF file")?;
    Ok(file.build_id()?.map(hex::encode))
}
