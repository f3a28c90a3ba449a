//! The source's shape (docs/architecture.md): no source file imports another that
//! imports it back. Every `crate::` and `super::` path outside a file's unit tests is
//! followed to the file it names; a circle among them fails, with its files named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, by its module path (`["store", "articles"]`).
fn sources(dir: &Path, module: &[String], found: &mut BTreeMap<Vec<String>, PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut inner = module.to_vec();
            inner.push(name);
            sources(&path, &inner, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut at = module.to_vec();
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                at.push(name);
            }
            found.insert(at, path);
        }
    }
}

/// The text of a file without its `#[cfg(test)] mod tests` (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The module paths a file's `crate::` and `super::` paths name, braces expanded one
/// level (`crate::store::{Store, StoreError}`).
fn imports(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    for head in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(head) {
            let start = from + at;
            from = start + head.len();
            // A whole word only (not `some_crate::`).
            if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
                continue;
            }
            let mut end = from;
            while end < text.len()
                && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
            {
                end += 1;
            }
            let mut base: Vec<String> = if head == "crate::" {
                Vec::new()
            } else {
                let mut parent = module.to_vec();
                parent.pop();
                parent
            };
            let mut rest = &text[from..end];
            // `super::super::x`
            while let Some(more) = rest.strip_prefix("super::") {
                base.pop();
                rest = more;
            }
            let parts: Vec<String> = rest
                .split("::")
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            let mut path = base;
            path.extend(parts);
            if text[end..].starts_with('{') {
                let close = text[end..].find('}').map_or(text.len(), |c| end + c);
                for item in text[end + 1..close].split(',') {
                    let first = item.trim().split("::").next().unwrap_or("").trim();
                    if !first.is_empty() && first != "self" {
                        let mut inner = path.clone();
                        inner.push(first.to_string());
                        found.push(inner);
                    }
                }
                if text[end + 1..close].contains("self") {
                    found.push(path);
                }
            } else {
                found.push(path);
            }
        }
    }
    found
}

/// The file a module path is in: its longest prefix that is a file.
fn file_of<'a>(path: &[String], files: &'a BTreeMap<Vec<String>, PathBuf>) -> Option<&'a PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.get(&path[..n].to_vec()))
}

#[test]
fn no_source_file_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    sources(&src, &[], &mut files);
    assert!(files.len() > 40, "the sources were found");
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (module, path) in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let targets = edges.entry(path.clone()).or_default();
        for import in imports(without_tests(&text), module) {
            if let Some(target) = file_of(&import, &files).filter(|t| *t != path) {
                targets.insert(target.clone());
            }
        }
    }
    if let Some(circle) = circle(&edges) {
        let names: Vec<String> = circle
            .iter()
            .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
            .collect();
        panic!("an import circle: {}", names.join(" -> "));
    }
}

/// A file that reaches itself again by following imports, with the way round.
fn circle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    let mut round = trail.clone();
                    round.push(start.clone());
                    return Some(round);
                }
                if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    None
}

#[test]
fn the_circle_finder_sees_a_circle() {
    let a = "use crate::b::Thing;\n";
    let found = imports(a, &["a".to_string()]);
    assert_eq!(found, vec![vec!["b".to_string(), "Thing".to_string()]]);
    let nested = imports(
        "use super::{x, y::Z};\n",
        &["m".to_string(), "n".to_string()],
    );
    assert_eq!(
        nested,
        vec![
            vec!["m".to_string(), "x".to_string()],
            vec!["m".to_string(), "y".to_string()]
        ]
    );
}

#[test]
fn a_circle_of_three_files_is_found_and_a_chain_is_not() {
    let edge = |a: &str, b: &str| (PathBuf::from(a), BTreeSet::from([PathBuf::from(b)]));
    let chain: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c")].into_iter().collect();
    assert_eq!(circle(&chain), None);
    let round: BTreeMap<_, _> = [edge("a", "b"), edge("b", "c"), edge("c", "a")]
        .into_iter()
        .collect();
    let found = circle(&round).expect("a circle");
    assert_eq!(found.first(), found.last());
    assert_eq!(found.len(), 4);
}
