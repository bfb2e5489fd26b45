//! The house's rules, read from the code: the `crate::` imports among the
//! top-level modules of `xtask/src` form no cycle, and nothing below the
//! command layer (`cli`) imports it. A failure prints the offending edges
//! with the file that makes each import.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

/// The command line: it may use every module, no module may use it.
const COMMAND_LAYER: &str = "cli";

/// An import of module `to` made by a file of module `from`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    file: String,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `text` with its comments and the insides of its string and character
/// literals blanked (newlines kept): only code is read for imports.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < c.len() {
                let pair = (c[i], c.get(i + 1).copied());
                if pair == ('/', Some('*')) || pair == ('*', Some('/')) {
                    depth = if pair.0 == '/' { depth + 1 } else { depth - 1 };
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0
                || !is_ident(c[i - 1])
                || (c[i - 1] == 'b' && (i < 2 || !is_ident(c[i - 2]))))
            && matches!(next, Some('"' | '#'))
        {
            // A raw string, r"…" or r#"…"#, when a quote follows the hashes.
            let mut j = i + 1;
            while c.get(j) == Some(&'#') {
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            out.push_str(&" ".repeat(j + 1 - i));
            i = j + 1;
            while i < c.len() {
                if c[i] == '"' && (0..hashes).all(|h| c.get(i + 1 + h) == Some(&'#')) {
                    out.push_str(&" ".repeat(1 + hashes));
                    i += 1 + hashes;
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() {
                match c[i] {
                    '\\' => {
                        out.push(' ');
                        i += 1;
                        if i < c.len() {
                            out.push(blank(c[i]));
                            i += 1;
                        }
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    ch => {
                        out.push(blank(ch));
                        i += 1;
                    }
                }
            }
        } else if c[i] == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{…}'.
            let mut j = i + 3;
            while j < c.len() && c[j] != '\'' {
                j += 1;
            }
            let end = (j + 1).min(c.len());
            out.push_str(&" ".repeat(end - i));
            i = end;
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The first segment of each path a use-tree at the start of `rest` names:
/// `a::B` gives `a`, `{a, b::{C, D}, self}` gives `a` and `b`.
fn first_segments(rest: &str) -> Vec<String> {
    let Some(group) = rest.strip_prefix('{') else {
        return first_segment(rest).into_iter().collect();
    };
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut item = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.extend(first_segment(&item));
                item.clear();
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    out.extend(first_segment(&item));
    out
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| is_ident(*c))
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

/// The crate-root items `text` reaches: through `crate::` (`crate::a::B`,
/// `crate::{a, b::{C, D}}`), and through `super::` chains that climb to the
/// root. The file is `depth` modules below the root (1 for `x.rs` and
/// `x/mod.rs`, 2 for `x/y.rs`), and each inline `mod m { … }` around a path
/// adds one. Comments and literals are not read.
fn imported_modules(text: &str, depth: usize) -> BTreeSet<String> {
    let code: Vec<char> = code_only(text).chars().collect();
    let at = |i: usize, word: &str| {
        word.chars()
            .enumerate()
            .all(|(k, w)| code.get(i + k) == Some(&w))
    };
    let mut out = BTreeSet::new();
    // One entry per open brace: whether it opened an inline module.
    let mut braces: Vec<bool> = Vec::new();
    let mut mod_pending = false;
    let mut i = 0;
    while i < code.len() {
        let starts_word = i == 0 || !is_ident(code[i - 1]);
        match code[i] {
            '{' => {
                braces.push(mod_pending);
                mod_pending = false;
            }
            '}' => {
                braces.pop();
            }
            ';' => mod_pending = false,
            _ if starts_word
                && at(i, "mod")
                && code.get(i + 3).is_some_and(|c| c.is_whitespace()) =>
            {
                mod_pending = true;
            }
            _ if starts_word && at(i, "crate::") => {
                i += "crate::".len();
                let rest: String = code[i..].iter().collect();
                out.extend(first_segments(&rest));
                continue;
            }
            _ if starts_word && at(i, "super::") => {
                let mut climbs = 0;
                while at(i, "super::") {
                    climbs += 1;
                    i += "super::".len();
                }
                let inline = braces.iter().filter(|m| **m).count();
                if depth + inline == climbs {
                    let rest: String = code[i..].iter().collect();
                    out.extend(first_segments(&rest));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Every import between two top-level modules of `src` (main.rs and lib.rs
/// stand above them all and are left out).
fn edges(src: &Path) -> Vec<Edge> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("reading xtask/src") {
            let path = entry.expect("reading xtask/src").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let module_of = |path: &Path| -> String {
        let rel = path.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a file");
        first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(p)).collect();
    let mut out = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(src).expect("under src");
        let module = module_of(path);
        if module == "main" || module == "lib" {
            continue;
        }
        // x.rs and x/mod.rs are one module below the root, x/y.rs two.
        let depth = rel.components().count() - usize::from(rel.ends_with("mod.rs"));
        let text = fs::read_to_string(path).expect("reading a source file");
        for to in imported_modules(&text, depth) {
            if to != module && modules.contains(&to) {
                out.push(Edge {
                    from: module.clone(),
                    to,
                    file: format!("xtask/src/{}", rel.display()),
                });
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The cycles of the graph: its strongly connected components of more than
/// one module (Tarjan), each as its modules in order.
fn cycles(edges: &[Edge]) -> Vec<Vec<String>> {
    let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in edges {
        graph.entry(&e.from).or_default().insert(&e.to);
        graph.entry(&e.to).or_default();
    }
    struct Walk<'a> {
        graph: &'a BTreeMap<&'a str, BTreeSet<&'a str>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for &w in &self.graph[v] {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let l = self.low[v].min(self.low[w]);
                    self.low.insert(v, l);
                } else if self.stack.contains(&w) {
                    let l = self.low[v].min(self.index[w]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.out
}

/// The edges inside each cycle, one line each.
fn describe(edges: &[Edge], cycles: &[Vec<String>]) -> String {
    let mut text = String::new();
    for c in cycles {
        text.push_str(&format!("cycle among {}:\n", c.join(", ")));
        for e in edges {
            if c.contains(&e.from) && c.contains(&e.to) {
                text.push_str(&format!("  {} -> {} ({})\n", e.from, e.to, e.file));
            }
        }
    }
    text
}

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_cycle_among_the_modules() {
    let edges = edges(&src());
    assert!(
        edges.len() > 20,
        "the import reader found only {} edges: it no longer reads the sources",
        edges.len()
    );
    let found = cycles(&edges);
    assert!(found.is_empty(), "{}", describe(&edges, &found));
}

#[test]
fn nothing_below_the_command_layer_imports_it() {
    let edges = edges(&src());
    assert!(
        edges.iter().any(|e| e.from == COMMAND_LAYER),
        "the command layer `{COMMAND_LAYER}` imports nothing: is it still xtask/src/{COMMAND_LAYER}?"
    );
    let upward: Vec<String> = edges
        .iter()
        .filter(|e| e.to == COMMAND_LAYER)
        .map(|e| format!("  {} -> {} ({})", e.from, e.to, e.file))
        .collect();
    assert!(
        upward.is_empty(),
        "modules below the command line import it; turn arguments into options in `{COMMAND_LAYER}` \
         and pass the options down:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_sees_every_form_of_import_and_the_cycles_they_make() {
    let text = "//! see crate::docs\nuse crate::{a::{B, C}, d, self as x};\nuse crate::e::F;\n\
                fn f() { crate::g::h(); let _ = xcrate::i; }\n";
    let found: Vec<String> = imported_modules(text, 1).into_iter().collect();
    assert_eq!(found, ["a", "d", "e", "g"]);
    // Comments at line ends and in blocks, strings, characters and
    // lifetimes: only code counts.
    let text = "use crate::{\n    fsutil, // a note\n    cli::Outcome, /* crate::x */\n};\n\
                fn f<'a>(s: &'a str) -> char { let _ = \"crate::y\"; let _ = r#\"crate::z\"#; '{' }\n\
                use crate::after;\n";
    let found: Vec<String> = imported_modules(text, 1).into_iter().collect();
    assert_eq!(found, ["after", "cli", "fsutil"]);
    // `super::` from x.rs is the root; from x/y.rs it takes two; inside an
    // inline module it names the file's own module.
    let text =
        "use super::cli;\nmod tests { use super::run; fn t() { super::super::net::f(); } }\n";
    let found: Vec<String> = imported_modules(text, 1).into_iter().collect();
    assert_eq!(found, ["cli", "net"]);
    let text = "use super::sibling;\nuse super::super::{cli, fsutil};\n";
    let found: Vec<String> = imported_modules(text, 2).into_iter().collect();
    assert_eq!(found, ["cli", "fsutil"]);

    let edge = |from: &str, to: &str| Edge {
        from: from.into(),
        to: to.into(),
        file: format!("{from}.rs"),
    };
    let graph = [
        edge("a", "b"),
        edge("b", "c"),
        edge("c", "a"),
        edge("c", "d"),
    ];
    let found = cycles(&graph);
    assert_eq!(found, [["a", "b", "c"]]);
    let text = describe(&graph, &found);
    assert!(text.contains("c -> a (c.rs)"), "{text}");
    assert!(!text.contains("-> d"), "{text}");
    assert!(cycles(&[edge("a", "b"), edge("b", "c")]).is_empty());
}
