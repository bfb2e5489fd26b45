//! The memcpy check: every object of a build references memcpy at the
//! GLIBC_2.2.5 version the patch series pins.

use super::*;

/// The header the memcpy patch forces into every translation unit: a tree
/// without it (a target the patch is not for) has no pin to check.
pub const MEMCPY_PIN_HEADER: &str = "deps/glibc-compat/memcpy-symver.h";

/// Every object file that calls memcpy must bind it to `memcpy@GLIBC_2.2.5`
/// (the symver patch forced into every translation unit): an object that
/// references plain `memcpy` was compiled without it.
///
/// Objects built with `-flto` hold LLVM bitcode, whose symbols the final link
/// decides; each is lowered to machine code with the pinned compiler
/// (`zig clang -c -x ir`, into `scratch`) and the result is checked the same
/// way, so the pin is proven for the modules LTO links too.
pub fn check_memcpy_pinned(tree: &Path, zig: &Path, scratch: &Path) -> Result<MemcpyCheck> {
    use object::{Object, ObjectSymbol};
    let mut unpinned = Vec::new();
    let mut check = MemcpyCheck::default();
    let sh = xshell::Shell::new()?;
    for path in walk_files(tree)? {
        if path.extension().and_then(|e| e.to_str()) != Some("o") {
            continue;
        }
        let rel = path
            .strip_prefix(tree)
            .unwrap_or(&path)
            .display()
            .to_string();
        let mut data = fs::read(&path)?;
        if is_bitcode(&data) {
            fs::create_dir_all(scratch)?;
            let lowered = scratch.join(format!("{}.o", check.bitcode));
            cmd!(
                sh,
                "{zig} clang -c -x ir -O0 -Wno-override-module {path} -o {lowered}"
            )
            .quiet()
            .run()
            .with_context(|| format!("lowering the LTO bitcode of {rel} to machine code"))?;
            data = fs::read(&lowered)?;
            fs::remove_file(&lowered)?;
            check.bitcode += 1;
        }
        let Ok(obj) = object::File::parse(&*data) else {
            continue;
        };
        check.objects += 1;
        if obj
            .symbols()
            .any(|s| s.is_undefined() && s.name() == Ok("memcpy"))
        {
            unpinned.push(rel);
        }
    }
    if check.objects == 0 {
        bail!("no object files found under {}", tree.display());
    }
    if !unpinned.is_empty() {
        bail!(
            "{} object file(s) call memcpy without the GLIBC_2.2.5 pin: {}",
            unpinned.len(),
            unpinned.join(", ")
        );
    }
    Ok(check)
}

/// How many objects the memcpy check read, and how many of them were LTO
/// bitcode lowered for it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemcpyCheck {
    pub objects: usize,
    pub bitcode: usize,
}

/// LLVM bitcode, bare (`BC\xC0\xDE`) or in its wrapper (`0x0B17C0DE`).
pub(super) fn is_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xC0\xDE") || data.starts_with(&[0xDE, 0xC0, 0x17, 0x0B])
}

fn walk_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    Ok(out)
}
