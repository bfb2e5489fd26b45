//! zig's compiler runtime without the C library's functions, for the targets
//! whose programs need a compiler-runtime routine (`[[target]]`'s
//! `compiler-rt = "without-libc"`).
//!
//! zig links its compiler runtime (`lib/compiler_rt.zig`) as one object.
//! Besides the routines a compiler calls (`__multf3`: aarch64's 128-bit
//! `long double` is done in software), that object defines, weakly, C
//! library functions: `memcpy`, `strlen`, the stack protector's
//! `__stack_chk_guard` and `__stack_chk_fail`, `sin`, `fmod`, … Once one
//! routine pulls the object in, its definitions win over glibc's: the
//! program copies memory with zig's loop, computes `sin` with zig's code and
//! checks its stack canary against a constant. verify names this as
//! `runtime-shadow`.
//!
//! The cure is zig's own runtime source with those modules left out, built
//! once per toolchain and target (in the zig cache warm-up) and named on
//! every link before zig's runtime: the routines then come from it, zig's
//! object is never pulled in, and the C library's functions stay glibc's.

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};

use crate::{
    fsutil::{self, Staging},
    treehash,
};

/// The lines of zig's `lib/compiler_rt.zig` left out: the modules and
/// exports that define functions of the C library (string and memory
/// functions, the stack protector, libm), and the complex-number routines,
/// which call libm's `fmax` through zig's own.
pub const LEFT_OUT: &[&str] = &[
    "        _ = @import(\"compiler_rt/memcpy.zig\");\n",
    "        if (!ofmt_c) {\n            symbol(&memset, \"memset\");\n        }\n",
    "        _ = @import(\"compiler_rt/memmove.zig\");\n",
    "        symbol(&memcmp, \"memcmp\");\n",
    "        symbol(&bcmp, \"bcmp\");\n",
    "        _ = @import(\"compiler_rt/ssp.zig\");\n",
    "        symbol(&strlen, \"strlen\");\n",
    "    _ = @import(\"compiler_rt/mulc3.zig\");\n",
    "    _ = @import(\"compiler_rt/divc3.zig\");\n",
    "    _ = @import(\"compiler_rt/cos.zig\");\n",
    "    _ = @import(\"compiler_rt/exp.zig\");\n",
    "    _ = @import(\"compiler_rt/exp2.zig\");\n",
    "    _ = @import(\"compiler_rt/fabs.zig\");\n",
    "    _ = @import(\"compiler_rt/floor_ceil.zig\");\n",
    "    _ = @import(\"compiler_rt/fma.zig\");\n",
    "    _ = @import(\"compiler_rt/fmax.zig\");\n",
    "    _ = @import(\"compiler_rt/fmin.zig\");\n",
    "    _ = @import(\"compiler_rt/fmod.zig\");\n",
    "    _ = @import(\"compiler_rt/log.zig\");\n",
    "    _ = @import(\"compiler_rt/log10.zig\");\n",
    "    _ = @import(\"compiler_rt/log2.zig\");\n",
    "    _ = @import(\"compiler_rt/round.zig\");\n",
    "    _ = @import(\"compiler_rt/sin.zig\");\n",
    "    _ = @import(\"compiler_rt/sincos.zig\");\n",
    "    _ = @import(\"compiler_rt/sqrt.zig\");\n",
    "    _ = @import(\"compiler_rt/tan.zig\");\n",
    "    _ = @import(\"compiler_rt/trunc.zig\");\n",
];

/// The library's name, for `-l`.
pub const LIBRARY: &str = "compiler_rt_without_libc";

/// The folder of the zig cache that holds the source and the library: named
/// by what is left out, so a change to the list is a new library and a new
/// compiler wrapper (which names the folder), hence new build keys.
pub fn folder() -> String {
    let hash = treehash::sha256_bytes(LEFT_OUT.concat().as_bytes());
    format!("portable-redis-rt-{}", &hash[..12])
}

/// What a link adds after its own arguments, with the zig cache in
/// `$ZIG_GLOBAL_CACHE_DIR` (the wrappers' environment).
pub fn link_args() -> String {
    format!(
        "-L\"${{ZIG_GLOBAL_CACHE_DIR:?the wrapper needs the zig cache}}/{}\" -l{LIBRARY}",
        folder()
    )
}

/// The warm-up's command that builds the library from the source
/// [`prepare`] wrote, with the zig binary in `$ZIG`.
pub fn build_command(zig_target: &str, cpu: &str) -> String {
    let dir = format!("\"$ZIG_GLOBAL_CACHE_DIR/{}\"", folder());
    format!(
        "\"$ZIG\" build-lib -static -OReleaseFast -fPIC -fno-stack-protector \
         -target {zig_target} -mcpu={cpu} --name {LIBRARY} \
         -femit-bin={dir}/lib{LIBRARY}.a {dir}/src/compiler_rt.zig\n"
    )
}

/// Copy zig's runtime source from `zig_lib` (zig's `lib/`) into
/// `dest/src` without the [`LEFT_OUT`] lines. Each must be there once: a zig
/// whose runtime differs is an error that names the line.
pub fn prepare(zig_lib: &Path, dest: &Path) -> Result<()> {
    let root = zig_lib.join("compiler_rt.zig");
    let text = fs::read_to_string(&root)
        .with_context(|| format!("reading zig's compiler runtime {}", root.display()))?;
    let edited = leave_out(&text).with_context(|| {
        format!(
            "{} is not the runtime xtask/src/compiler_rt.rs knows: update LEFT_OUT for this zig",
            root.display()
        )
    })?;
    let src = dest.join("src");
    let staging = Staging::beside(&src)?;
    fsutil::copy_tree(
        &zig_lib.join("compiler_rt"),
        &staging.path().join("compiler_rt"),
    )?;
    fsutil::write_atomic(&staging.path().join("compiler_rt.zig"), edited.as_bytes())?;
    staging.commit(&src)
}

/// `text` without the [`LEFT_OUT`] lines, each found exactly once.
fn leave_out(text: &str) -> Result<String> {
    let mut out = text.to_string();
    for line in LEFT_OUT {
        match out.matches(line).count() {
            1 => out = out.replacen(line, "", 1),
            n => bail!("`{}` is there {n} times, not once", line.trim()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_is_left_out_once_and_a_missing_one_is_named() {
        let text = format!("head\n{}tail\n", LEFT_OUT.concat());
        assert_eq!(leave_out(&text).unwrap(), "head\ntail\n");
        let short = text.replacen(LEFT_OUT[3], "", 1);
        let err = leave_out(&short).unwrap_err().to_string();
        assert!(err.contains("symbol(&memcmp, \"memcmp\");"), "{err}");
        assert!(err.contains("0 times"), "{err}");
    }

    #[test]
    fn the_folder_follows_the_list() {
        assert!(folder().starts_with("portable-redis-rt-"));
        assert!(link_args().contains(&folder()));
        assert!(build_command("aarch64-linux-gnu.2.17", "baseline").contains(&folder()));
    }
}
