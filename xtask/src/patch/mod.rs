//! Stage 2, patch: a patch series applied in order to a fresh copy of a pinned
//! tree, with offset and fuzz like GNU patch, and a report per hunk.
//!
//! A failure names the patch, the file and the hunk, shows the lines the hunk
//! expected beside what the file holds there now, and leaves no half-patched
//! tree behind (the copy is made in a staging folder).

use std::{
    fmt, fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{
    fsutil,
    pins::{Target, ARCHES, LIBCS},
    treehash,
};

mod parse;
pub use parse::*;
mod apply;
pub use apply::*;
mod series;
pub use series::*;

#[cfg(test)]
mod tests;
