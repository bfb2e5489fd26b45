//! Linker maps: which object or archive member pulled a symbol in.
//!
//! verify reads the cross-reference table of a map (`Cross Reference Table`,
//! written by GNU ld and lld with `--cref`): each symbol, the file that
//! defines it, then the files that refer to it. zig's linker driver passes
//! `--print-map` but not `--cref`, so the Redis build completes its maps
//! itself ([`complete`]): it reads the link inputs the map lists (objects and
//! archive members) with the `object` crate and appends the same table for
//! the binary's dynamic imports. Link-time optimised objects are LLVM
//! bitcode, which lld's map does not list: the imports no listed input refers
//! to are named after the object lld made of them (`redis-server.lto.o`),
//! when every other input could be read.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use object::{read::archive::ArchiveFile, Object, ObjectSymbol};

const CREF_HEADER: &str = "Cross Reference Table";

/// What verify needs from a map.
#[derive(Debug, Clone, Default)]
pub struct LinkMap {
    /// symbol → the files that refer to it (the defining file excluded).
    pub references: HashMap<String, Vec<String>>,
    /// Symbols the map places in sections of a compiler runtime archive
    /// member ([`is_compiler_runtime`]): (member, symbol), in map order.
    pub runtime: Vec<(String, String)>,
}

impl LinkMap {
    pub fn load(path: &Path) -> Result<LinkMap> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("reading the linker map {}", path.display()))?;
        Ok(LinkMap::parse(&text))
    }

    pub fn parse(text: &str) -> LinkMap {
        let runtime = runtime_symbols(text);
        let mut references: HashMap<String, Vec<String>> = HashMap::new();
        let Some(start) = text.find(CREF_HEADER) else {
            return LinkMap {
                references,
                runtime,
            };
        };
        let mut current: Option<String> = None;
        // The first file under a symbol defines it; the rest refer to it.
        let mut seen_definer = false;
        for line in text[start..].lines().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with("Symbol") && line.trim_end().ends_with("File") {
                continue;
            }
            let indented = line.starts_with(' ') || line.starts_with('\t');
            if !indented {
                let mut parts = line.split_whitespace();
                let Some(name) = parts.next() else { continue };
                let name = name.split('@').next().unwrap_or(name).to_string();
                seen_definer = parts.next().is_some();
                references.entry(name.clone()).or_default();
                current = Some(name);
                continue;
            }
            let Some(sym) = &current else { continue };
            let file = line.trim().to_string();
            if !seen_definer {
                seen_definer = true;
                continue;
            }
            let refs = references.entry(sym.clone()).or_default();
            if !refs.contains(&file) {
                refs.push(file);
            }
        }
        LinkMap {
            references,
            runtime,
        }
    }

    /// The files that refer to `symbol`.
    pub fn referenced_by(&self, symbol: &str) -> &[String] {
        self.references
            .get(symbol)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// The distinct input files of an lld map (`path` or `archive(member)`), in
/// order of first appearance. Synthetic inputs (`<internal>`) are skipped.
pub fn inputs(map: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (_, item) in map_lines(map) {
        let Some((file, _)) = item.rsplit_once(":(") else {
            continue;
        };
        if file.starts_with('<') || file.is_empty() {
            continue;
        }
        if seen.insert(file.to_string()) {
            out.push(file.to_string());
        }
    }
    out
}

/// The lines of an lld map before any cross-reference table, as (indent,
/// item): lld writes `VMA LMA Size Align` and then the output section (no
/// indent), an input section (`file:(section)`, indented 8) or a symbol
/// (indented 16). Lines without the four numbers are skipped.
fn map_lines(map: &str) -> impl Iterator<Item = (usize, &str)> {
    map.lines()
        .take_while(|line| !line.starts_with(CREF_HEADER))
        .filter_map(|line| {
            let mut rest = line;
            for _ in 0..4 {
                let (field, tail) = rest.trim_start().split_once(' ')?;
                u64::from_str_radix(field, 16).ok()?;
                rest = tail;
            }
            let item = rest.trim();
            Some((rest.len() - rest.trim_start().len(), item))
        })
}

/// A compiler's own runtime archive: zig's `libcompiler_rt.a` (and any
/// `libcompiler_rt*.a` made from it, such as a build's runtime without the
/// C library's functions), LLVM's `libclang_rt.builtins*.a`, GCC's
/// `libgcc.a`.
pub fn is_compiler_runtime(input: &str) -> bool {
    let (archive, member) = split_member(input);
    let name = base(archive);
    member.is_some()
        && ((name.starts_with("libcompiler_rt") && name.ends_with(".a"))
            || name == "libgcc.a"
            || name.starts_with("libclang_rt.builtins"))
}

/// The symbols an lld map lists under input sections of compiler runtime
/// members.
fn runtime_symbols(map: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<&str> = None;
    for (indent, item) in map_lines(map) {
        match indent {
            0 => current = None,
            1..=8 => {
                current = item
                    .rsplit_once(":(")
                    .map(|(file, _)| file)
                    .filter(|file| is_compiler_runtime(file));
            }
            _ => {
                if let Some(member) = current {
                    out.push((member.to_string(), item.to_string()));
                }
            }
        }
    }
    out
}

/// `archive.a(member.o)` → (`archive.a`, `member.o`).
pub fn split_member(input: &str) -> (&str, Option<&str>) {
    match input.strip_suffix(')').and_then(|s| s.rsplit_once('(')) {
        Some((archive, member)) if archive.ends_with(".a") => (archive, Some(member)),
        _ => (input, None),
    }
}

/// Append a cross-reference table to an lld `map` for `imports` (symbol →
/// the library that defines it): for each import, the inputs the map lists
/// that refer to it. `to_host` turns a path as the linker saw it into one
/// readable here (the build runs in a sandbox). Inputs that cannot be read
/// are listed at the end of the table.
pub fn complete(
    map: &str,
    imports: &BTreeMap<String, String>,
    to_host: impl Fn(&str) -> PathBuf,
) -> Result<String> {
    let mut by_file: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let inputs = inputs(map);
    for input in &inputs {
        let (file, member) = split_member(input);
        let members = by_file.entry(file).or_default();
        if let Some(m) = member {
            members.insert(m);
        }
    }
    let mut refs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut unreadable = Vec::new();
    let mut note = |input: String, undefined: &mut dyn Iterator<Item = String>| {
        for name in undefined {
            if let Some((sym, _)) = imports.get_key_value(&name) {
                refs.entry(sym.as_str()).or_default().push(input.clone());
            }
        }
    };
    // lld's object of the link-time optimised inputs (`<output>.lto.o`)
    // lives only in memory, and its inputs, LLVM bitcode, are not listed.
    let mut lto = Vec::new();
    for (file, members) in &by_file {
        let host = to_host(file);
        let Ok(data) = fs::read(&host) else {
            if members.is_empty() && file.ends_with(".lto.o") {
                lto.push(file.to_string());
            } else {
                unreadable.push(file.to_string());
            }
            continue;
        };
        if members.is_empty() {
            match undefined_symbols(&data) {
                Ok(u) => note(file.to_string(), &mut u.into_iter()),
                Err(_) => unreadable.push(file.to_string()),
            }
            continue;
        }
        let Ok(archive) = ArchiveFile::parse(&*data) else {
            unreadable.push(file.to_string());
            continue;
        };
        // lld prints a member as the archive stores its name, which may
        // be a path (zig's own archives); match on the file name.
        let wanted: HashMap<&str, &str> = members.iter().map(|m| (base(m), *m)).collect();
        for member in archive.members() {
            let Ok(member) = member else { continue };
            let name = String::from_utf8_lossy(member.name()).into_owned();
            let Some(listed) = wanted.get(base(&name)) else {
                continue;
            };
            let Ok(bytes) = member.data(&*data) else {
                continue;
            };
            // Members sit at 2-byte boundaries; the ELF reader wants the
            // header aligned, which a fresh allocation is.
            let aligned: Vec<u8> = bytes.to_owned();
            if let Ok(u) = undefined_symbols(&aligned) {
                note(format!("{file}({listed})"), &mut u.into_iter());
            }
        }
    }
    // An import no readable input refers to is the optimised object's, when
    // every other input could be read. (One that an archive member refers to
    // as well is named by the member only.)
    if !lto.is_empty() && unreadable.is_empty() {
        for sym in imports.keys() {
            let files = refs.entry(sym.as_str()).or_default();
            if files.is_empty() {
                files.extend(lto.iter().cloned());
            }
        }
    }

    let mut out = map.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(CREF_HEADER);
    out.push_str(" (dynamic imports; written by elfcheck from the inputs above)\n\n");
    out.push_str(&format!("{:<49}File\n", "Symbol"));
    for (sym, library) in imports {
        out.push_str(&format!("{sym:<49}{library}\n"));
        let mut files = refs.remove(sym.as_str()).unwrap_or_default();
        files.dedup();
        for f in files {
            out.push_str(&format!("{:49}{f}\n", ""));
        }
    }
    if !unreadable.is_empty() {
        out.push_str(&format!(
            "\n# inputs that could not be read: {}\n",
            unreadable.join(" ")
        ));
    }
    Ok(out)
}

pub fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// [`complete`] for the dynamic imports of `binary` (an ELF executable).
pub fn complete_for(map: &str, binary: &[u8], to_host: impl Fn(&str) -> PathBuf) -> Result<String> {
    let facts = super::elf::read(binary)?;
    let imports = facts
        .imports
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.library.clone().unwrap_or_else(|| "-".to_string()),
            )
        })
        .collect();
    complete(map, &imports, to_host)
}

fn undefined_symbols(data: &[u8]) -> Result<Vec<String>> {
    let obj = object::File::parse(data)?;
    Ok(obj
        .symbols()
        .filter(|s| s.is_undefined() && s.is_global())
        .filter_map(|s| {
            s.name()
                .ok()
                .map(|n| n.split('@').next().unwrap_or(n).to_string())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LLD: &str = "\
             VMA              LMA     Size Align Out     In      Symbol
          2002a8           2002a8       1c     1 .interp
          2002a8           2002a8       1c     1         <internal>:(.interp)
          201000           201000       2a    16         /build/src/src/server.o:(.text)
          201000           201000        0     1                 main
          201030           201030       10    16         /build/openssl/lib/libcrypto.a(libcrypto-lib-bio_sock.o):(.text.BIO_sock_init)
          201040           201040       10    16         /build/src/src/server.o:(.text.unlikely)
";

    #[test]
    fn lld_map_inputs_are_objects_and_archive_members() {
        assert_eq!(
            inputs(LLD),
            [
                "/build/src/src/server.o",
                "/build/openssl/lib/libcrypto.a(libcrypto-lib-bio_sock.o)"
            ]
        );
        assert_eq!(
            split_member("/x/libcrypto.a(a-b.o)"),
            ("/x/libcrypto.a", Some("a-b.o"))
        );
        assert_eq!(split_member("/x/server.o"), ("/x/server.o", None));
    }

    #[test]
    fn cross_reference_tables_of_gnu_ld_and_lld_name_the_referring_files() {
        let gnu = "\
Cross Reference Table

Symbol                                            File
clock_gettime@@GLIBC_2.17                         /lib/x86_64-linux-gnu/libc.so.6
                                                  /tmp/a.o
                                                  /tmp/libx.a(b.o)
a_symbol_name_so_long_that_it_does_not_fit_the_column_at_all
                                                  /tmp/def.o
                                                  /tmp/user.o
";
        let map = LinkMap::parse(gnu);
        assert_eq!(
            map.referenced_by("clock_gettime"),
            ["/tmp/a.o", "/tmp/libx.a(b.o)"]
        );
        assert_eq!(
            map.referenced_by("a_symbol_name_so_long_that_it_does_not_fit_the_column_at_all"),
            ["/tmp/user.o"]
        );
        assert!(map.referenced_by("missing").is_empty());
        assert!(LinkMap::parse(LLD).references.is_empty());
    }

    #[test]
    fn imports_no_readable_input_refers_to_are_the_lto_objects() {
        let lto_only = "\
             VMA              LMA     Size Align Out     In      Symbol
          201000           201000       2a    16         redis-server.lto.o:(.text.main)
          201000           201000        0     1                 main
";
        let imports: BTreeMap<String, String> = [("close", "libc.so.6"), ("fork", "libc.so.6")]
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .into();
        let nowhere = |f: &str| Path::new("/nonexistent").join(f);
        let out = complete(lto_only, &imports, nowhere).unwrap();
        let parsed = LinkMap::parse(&out);
        assert_eq!(parsed.referenced_by("close"), ["redis-server.lto.o"]);
        assert_eq!(parsed.referenced_by("fork"), ["redis-server.lto.o"]);
        // The object in memory is not an unreadable input.
        assert!(!out.contains("could not be read"), "{out}");

        // With an input that could not be read, an import nobody is seen to
        // refer to may be that input's: it is named after nobody.
        let also_unreadable = format!(
            "{lto_only}          201030           201030       10    16         /gone/libx.a(y.o):(.text.y)\n"
        );
        let out = complete(&also_unreadable, &imports, nowhere).unwrap();
        assert!(LinkMap::parse(&out).referenced_by("close").is_empty());
        assert!(
            out.ends_with("# inputs that could not be read: /gone/libx.a\n"),
            "{out}"
        );
    }

    #[test]
    fn symbols_in_compiler_runtime_members_are_listed() {
        let map = "\
             VMA              LMA     Size Align Out     In      Symbol
          201000           201000       2a    16 .text
          201000           201000       2a    16         /build/src/src/bitops.o:(.text)
          201000           201000        0     1                 redisPopcount
          79fb00           79fb00       11    16         /cache/zig/o/1/libcompiler_rt.a(/cache/zig/o/1/compiler_rt_zcu.o):(.text.compiler_rt.memcpy.memcpyFast)
          79fb00           79fb00       11     1                 compiler_rt.memcpy.memcpyFast
          79fb00           79fb00       11     1                 memcpy
          79fc00           79fc00       10    16         /usr/lib/gcc/x86_64-linux-gnu/12/libgcc.a(_udivti3.o):(.text)
          79fc00           79fc00       10     1                 __udivti3
          79fd00           79fd00       10    16         /build/src/src/server.o:(.text.main)
          79fd00           79fd00       10     1                 main
";
        let parsed = LinkMap::parse(map);
        let names: Vec<&str> = parsed.runtime.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            names,
            ["compiler_rt.memcpy.memcpyFast", "memcpy", "__udivti3"]
        );
        assert!(parsed.runtime[0]
            .0
            .ends_with("libcompiler_rt.a(/cache/zig/o/1/compiler_rt_zcu.o)"));
        assert!(!is_compiler_runtime("/build/src/src/server.o"));
        assert!(is_compiler_runtime(
            "/x/libclang_rt.builtins-x86_64.a(udivti3.o)"
        ));
        assert!(is_compiler_runtime(
            "/cache/zig/portable-redis-rt-1/libcompiler_rt_without_libc.a(/t/compiler_rt_without_libc_zcu.o)"
        ));
        assert!(!is_compiler_runtime("/x/libcompiler_rt_without_libc.a"));
    }
}
