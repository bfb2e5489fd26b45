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

/// The top-level modules `text` names through `crate::` (`crate::a::B`,
/// `crate::{a, b::{C, D}}`), comments left out.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `xcrate::` is not `crate::`
        }
        if let Some(group) = rest.strip_prefix('{') {
            // The items of the group at its own depth.
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
        } else {
            out.extend(first_segment(rest));
        }
    }
    out
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
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
    let mut out = Vec::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a file");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("reading a source file");
        for to in imported_modules(&text) {
            if to != module {
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
    let found: Vec<String> = imported_modules(text).into_iter().collect();
    assert_eq!(found, ["a", "d", "e", "g"]);

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
