//! Checks the layering drawn in the crate documentation on the sources themselves: every
//! `crate::` path outside comments is a dependency of its module on another, and each must point
//! to the same layer or one below, with no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first, as in the crate documentation.
const LAYERS: &[(&str, &[&str])] = &[
    ("foundation", &["settings", "client", "telemetry", "metrics"]),
    ("services", &["accounts", "audit", "auth", "cluster", "import", "password", "security", "signing_keys", "ssf"]),
    ("state", &["state"]),
    ("HTTP", &["routes", "extract", "error", "middleware", "serve", "openapi"]),
    ("assembly", &["startup", "check"]),
    ("edge", &["cli"]),
];

/// What the crate root re-exports, by the module it comes from.
const ROOT_REEXPORTS: &[(&str, &str)] =
    &[("Settings", "settings"), ("AppState", "state"), ("Application", "startup"), ("router", "startup")];

/// Files that are not part of the layering: the root, the binary and this check.
const SKIPPED: &[&str] = &["lib", "main", "layering"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, modules)| modules.contains(&module))
}

fn ident(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The modules `code` names through `crate::` (grouped imports included).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let preceded = rest[..i].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if preceded {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        found.insert(ident(group[start..j].trim()).to_owned());
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(ident(group[start..j].trim()).to_owned());
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(after).to_owned());
        }
    }
    found.remove("");
    found
}

/// Every module of `src` with the modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = first.strip_suffix(".rs").unwrap_or(first).to_owned();
        if SKIPPED.contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code: String =
            text.lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        let deps = graph.entry(module.clone()).or_default();
        for name in crate_paths(&code) {
            let target = ROOT_REEXPORTS.iter().find(|(n, _)| *n == name).map_or(name.as_str(), |(_, m)| m);
            assert!(
                layer_of(target).is_some() || SKIPPED.contains(&target),
                "{}: `crate::{name}` is neither a module with a layer nor a known root re-export",
                relative.display()
            );
            if target != module {
                deps.insert(target.to_owned());
            }
        }
    }
    graph
}

#[test]
fn every_module_has_a_layer() {
    let graph = graph();
    for module in graph.keys() {
        assert!(layer_of(module).is_some(), "module `{module}` is in no layer: add it to LAYERS and the crate docs");
    }
    for (_, modules) in LAYERS {
        for module in *modules {
            assert!(graph.contains_key(*module), "LAYERS names `{module}`, which is not a module");
        }
    }
}

#[test]
fn dependencies_point_down_or_across() {
    let mut upward = Vec::new();
    for (module, deps) in graph() {
        for dep in deps {
            let (Some(from), Some(to)) = (layer_of(&module), layer_of(&dep)) else { continue };
            if to > from {
                upward.push(format!("{module} ({}) -> {dep} ({})", LAYERS[from].0, LAYERS[to].0));
            }
        }
    }
    assert!(upward.is_empty(), "dependencies pointing up a layer: {upward:#?}");
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    // Kahn's algorithm: repeatedly take the modules whose dependencies are all taken.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while done.len() < graph.len() {
        let ready: Vec<&str> = graph
            .iter()
            .filter(|(m, deps)| !done.contains(m.as_str()) && deps.iter().all(|d| done.contains(d.as_str())))
            .map(|(m, _)| m.as_str())
            .collect();
        assert!(
            !ready.is_empty(),
            "a cycle among: {:?}",
            graph.keys().filter(|m| !done.contains(m.as_str())).collect::<Vec<_>>()
        );
        order.extend(ready.iter().copied());
        done.extend(ready);
    }
    for module in order {
        println!("{module} -> {:?}", graph[module]);
    }
}

#[test]
fn crate_paths_are_read_from_plain_and_grouped_imports() {
    let code = "use crate::a::B;\nuse crate::{c, d::{E, F}, Settings};\nlet x = crate::g::h(); keycard_crate::no;";
    let found: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(found, ["Settings", "a", "c", "d", "g"]);
}
