//! The import direction of `src/` (README "Architecture"), checked on the source text: every
//! `crate::` path a file names must point to a lower layer, features' graphql.rs files never
//! name each other, and only repo.rs files name the sea-orm entities. A new import that breaks
//! the direction fails here with the file and the path it named.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

/// The features: one folder each, with graphql.rs above the rest of the folder.
const FEATURES: [&str; 6] = ["accounts", "admin", "audit", "auth", "media", "social"];

/// Layers from the bottom up; a file may name only modules of a lower rank.
fn rank(module: &str, in_graphql_file: bool) -> Option<u32> {
    let feature_rank = |base: u32| if in_graphql_file { 50 } else { base };
    Some(match module {
        "error" | "clock" | "telemetry" => 0,
        "config" => 1,
        "domain" | "entity" | "client" => 2,
        "db" => 3,
        "kv" => 4,
        "security" | "notify" => 5,
        "audit" => feature_rank(10),
        "users" => 11,
        "sessions" => 12,
        "identities" => 13,
        "media" => feature_rank(20),
        "accounts" => feature_rank(21),
        "auth" => feature_rank(22),
        "admin" => feature_rank(23),
        "social" => feature_rank(24),
        // The Django import (a command-line operation) creates accounts below every feature.
        "import" => 25,
        "services" => 30,
        "graphql" => 40,
        "schema" => 60,
        "http" => 70,
        "app" => 80,
        _ => return None,
    })
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Every `crate::` path in `source` as (first segment, second segment), with `use` trees
/// expanded: `use crate::{a::{b, c}, d}` names a::b, a::c and d.
fn crate_paths(source: &str) -> BTreeSet<(String, String)> {
    let mut paths = BTreeSet::new();
    let code: String = source.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        collect(rest, &mut Vec::new(), &mut paths);
    }
    paths
}

/// Reads one use tree at the start of `text` below `prefix`.
fn collect(text: &str, prefix: &mut Vec<String>, paths: &mut BTreeSet<(String, String)>) -> usize {
    let text_trimmed = text.trim_start();
    let mut used = text.len() - text_trimmed.len();
    if let Some(inner) = text_trimmed.strip_prefix('{') {
        used += 1;
        let mut offset = 0;
        loop {
            let part = &inner[offset..];
            let skip = part.len() - part.trim_start_matches([' ', '\n', ',', '\t', '\r']).len();
            offset += skip;
            if inner[offset..].starts_with('}') || offset >= inner.len() {
                return used + offset + 1;
            }
            offset += collect(&inner[offset..], &mut prefix.clone(), paths);
        }
    }
    let ident: String = text_trimmed.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    used += ident.len();
    let after = &text_trimmed[ident.len()..];
    if !ident.is_empty() && ident != "self" {
        prefix.push(ident);
    }
    if let Some(next) = after.strip_prefix("::") {
        return used + 2 + collect(next, prefix, paths);
    }
    if let Some(first) = prefix.first() {
        paths.insert((first.clone(), prefix.get(1).cloned().unwrap_or_default()));
    }
    // `path as alias`: the alias names nothing new.
    if let Some(alias) = after.trim_start().strip_prefix("as ") {
        let alias_len = alias.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
        used += after.len() - alias.len() + (alias.len() - alias.trim_start().len()) + alias_len;
    }
    used
}

#[test]
fn imports_point_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&root).unwrap_or(file).to_string_lossy().replace('\\', "/");
        let module = relative.split(['/', '.']).next().unwrap_or_default().to_owned();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let is_graphql_file = FEATURES.contains(&module.as_str()) && relative.ends_with("/graphql.rs");
        let Some(own) = rank(&module, is_graphql_file) else {
            violations.push(format!("{relative}: module `{module}` has no layer in tests/api/layers.rs"));
            continue;
        };
        let source = std::fs::read_to_string(file).unwrap_or_default();
        for (target, below) in crate_paths(&source) {
            if target == module {
                continue;
            }
            if target == "entity" && !relative.ends_with("repo.rs") {
                violations.push(format!("{relative}: names crate::entity; only repo.rs files may"));
            }
            let names_graphql = FEATURES.contains(&target.as_str()) && below == "graphql";
            match rank(&target, names_graphql) {
                Some(theirs) if theirs < own => {}
                Some(_) => violations.push(format!("{relative} (layer {own}) imports crate::{target}::{below}")),
                None => violations.push(format!("{relative}: crate::{target} has no layer in tests/api/layers.rs")),
            }
        }
    }
    assert!(violations.is_empty(), "imports against the layer direction:\n{}", violations.join("\n"));
}

#[test]
fn the_use_tree_reader_expands_nested_groups() {
    let paths = crate_paths("use crate::{a::{b, c::d}, e, f::{self, g}, j::k as l};\nfn x() { crate::h::i(); }");
    let names: Vec<String> = paths.into_iter().map(|(a, b)| format!("{a}::{b}")).collect();
    assert_eq!(names, ["a::b", "a::c", "e::", "f::", "f::g", "h::i", "j::k"]);
}
