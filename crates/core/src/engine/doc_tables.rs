//! Reading the checked documentation pages (docs/firmware.md, docs/devicepatch.md) in tests:
//! sections, the rows of their first table, backticked words and code-like words. The pages are
//! checked against the engine, so they cannot drift from what it does.

use std::collections::BTreeSet;

/// The lines of the section under `## {title}` of `page`, up to the next section.
pub fn section<'p>(page: &'p str, title: &str) -> Vec<&'p str> {
    let heading = format!("## {title}");
    let mut lines = page.lines().skip_while(|l| *l != heading);
    assert!(lines.next().is_some(), "the page has no {heading:?}");
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

/// The body rows of the first table in `lines`, as trimmed cells.
pub fn table_rows<'p>(lines: &[&'p str]) -> Vec<Vec<&'p str>> {
    lines
        .iter()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect()
        })
        .collect()
}

/// The words in backticks in `text`.
pub fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Every upper-case word with an underscore in `page` (codes look like that); words that start
/// or end with `_` are families written with an ellipsis, e.g. `…_TIMEOUT_OCCURRED`.
pub fn code_like_words(page: &str) -> BTreeSet<&str> {
    page.split(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .filter(|w| w.contains('_') && !w.starts_with('_') && !w.ends_with('_'))
        .filter(|w| w.len() > 3)
        .collect()
}

#[test]
fn the_parsers_read_what_they_look_for() {
    let page = "# t\n\n## A\n\ntext\n\n| h | i |\n|---|---|\n| `XY_Z` | b |\n\n## B\n";
    assert_eq!(table_rows(&section(page, "A")), [["`XY_Z`", "b"]]);
    assert_eq!(quoted("a `B` c `D_E` f"), ["B", "D_E"]);
    assert!(code_like_words(page).contains("XY_Z"));
}
