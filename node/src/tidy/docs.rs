//! Tidy checks on the repository's documents, run as unit tests: every
//! relative link in a Markdown file resolves (file and heading), every
//! path `ARCHITECTURE.md` names exists, every `docs/…` path a source comment
//! cites exists, and nothing cites a file outside the repository.
//! (rust-analyzer keeps such rules in `tidy.rs`: a rule a test checks does
//! not depend on a reviewer remembering it.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The repository root (this crate is `node/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ has a parent")
        .to_owned()
}

/// Folders that are not ours to check, or not sources at all.
const SKIP: &[&str] = &[
    "target",
    "node_modules",
    "vendor",
    "dist",
    ".git",
    ".unit",
    "corpus",
    "artifacts",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !SKIP.contains(&name.as_ref()) && !name.starts_with('.') {
                walk(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

fn files_with(ext: &[&str]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(&root(), &mut all);
    all.retain(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
    });
    all.sort();
    all
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(markdown: &str) -> impl Iterator<Item = &str> {
    let mut in_code = false;
    markdown.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            return false;
        }
        !in_code
    })
}

/// GitHub's heading anchors: lower case, punctuation dropped (but `-` and
/// `_`), spaces to `-`; a repeated heading gets `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose_lines(markdown) {
        // Explicit anchors: `<a id="f1"></a>`.
        let mut rest = line;
        while let Some(at) = rest.find("<a id=\"") {
            let after = &rest[at + 7..];
            if let Some(end) = after.find('"') {
                seen.insert(after[..end].to_owned());
            }
            rest = after;
        }
        if !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim();
        let mut slug = String::new();
        for c in text.chars() {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                slug.extend(c.to_lowercase());
            } else if c == ' ' {
                slug.push('-');
            }
        }
        let mut candidate = slug.clone();
        let mut n = 1;
        while seen.contains(&candidate) {
            candidate = format!("{slug}-{n}");
            n += 1;
        }
        seen.insert(candidate);
    }
    seen
}

/// The targets of inline Markdown links `[text](target)`, outside code.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(markdown) {
        // Inline code spans may hold link-like text that is not a link.
        let mut outside = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                outside.push_str(part);
            }
        }
        let mut rest = outside.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("");
            targets.push(target.to_owned());
            rest = &after[end..];
        }
    }
    targets
}

#[test]
fn every_relative_markdown_link_resolves() {
    let mut broken = Vec::new();
    for file in files_with(&["md"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.starts_with('<')
            {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !resolved.exists() {
                broken.push(format!("{}: {target} (no such file)", relative(&file)));
                continue;
            }
            if let Some(anchor) = anchor
                && resolved.extension().is_some_and(|e| e == "md")
            {
                let heads = anchors(&std::fs::read_to_string(&resolved).unwrap());
                if !heads.contains(anchor) {
                    broken.push(format!("{}: {target} (no such heading)", relative(&file)));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// Paths in backticks in ARCHITECTURE.md that look like repository paths
/// (`node/src/engine/writer.rs`, `docs/spec/api.md`) must exist; a path
/// relative to a crate (`engine/writer.rs`, `api/links.rs`) must exist
/// under one of the crates' `src/`.
#[test]
fn paths_named_in_architecture_exist() {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let bases: Vec<PathBuf> = ["", "node/src", "protocol/src", "protocol"]
        .iter()
        .map(|b| root.join(b))
        .chain(files_with(&["toml"]).into_iter().filter_map(|p| {
            (p.file_name()? == "Cargo.toml").then(|| p.parent().unwrap().join("src"))
        }))
        .collect();
    let mut missing = Vec::new();
    for (i, span) in text.split('`').enumerate() {
        let looks_like_path = i % 2 == 1
            && !span.contains(' ')
            && !span.contains("::")
            && span.contains('/')
            && [".rs", ".md", ".json", ".toml", ".sh", ".ts", ".tsx"]
                .iter()
                .any(|ext| span.ends_with(ext));
        if !looks_like_path {
            continue;
        }
        if !bases.iter().any(|base| base.join(span).exists()) {
            missing.push(span.to_owned());
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

/// Source comments cite specs by path (`docs/spec/api.md`): the file must
/// exist. And nothing checked in points outside the repository (a sibling
/// folder of the checkout, a machine's absolute path): a reader of the repo
/// alone could not follow it.
#[test]
fn cited_documents_exist_and_are_inside_the_repository() {
    let root = root();
    // Built at run time so this file does not match itself.
    let outside = [["..", "shared", ""].join("/"), ["", "work", ""].join("/")];
    let mut problems = Vec::new();
    for file in files_with(&["rs", "md", "ts", "tsx", "mjs", "toml"]) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let at = format!("{}:{}", relative(&file), n + 1);
            if outside.iter().any(|needle| line.contains(needle.as_str())) {
                problems.push(format!("{at}: cites a file outside the repository"));
            }
            let mut rest = line;
            while let Some(i) = rest.find("docs/spec/") {
                let cited: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '/' | '.' | '_' | '-'))
                    .collect();
                let cited = cited.trim_end_matches('.');
                if (cited.ends_with(".md") || cited.ends_with(".json"))
                    && !root.join(cited).exists()
                {
                    problems.push(format!("{at}: cites {cited}, which does not exist"));
                }
                rest = &rest[i + "docs/spec/".len()..];
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn anchors_follow_github() {
    let heads = anchors(
        "<a id=\"f1\"></a>**F1.** x\n# Run a node\n## Federation admin\n## Federation admin\n### `GET /x` — list\n",
    );
    assert!(heads.contains("run-a-node"));
    assert!(heads.contains("f1"));
    assert!(heads.contains("federation-admin"));
    assert!(heads.contains("federation-admin-1"));
    assert!(heads.contains("get-x--list"), "{heads:?}");
    assert_eq!(
        link_targets("see [a](b.md#c) and `[x](y)` and [d](e)"),
        vec!["b.md#c".to_owned(), "e".to_owned()]
    );
}
