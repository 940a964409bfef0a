//! The engine and the window arithmetic are pure: time comes in as a value, devices and the API
//! server are reached through plain values the engine returns. This test reads the source of
//! `crates/core/src/engine/**` and `crates/core/src/schedule/**` (their tests included) and fails on clock reads, I/O,
//! randomness and process control, naming the file and line of each.
//!
//! Comments and the contents of string literals are not code and are not looked at.

use std::path::{Path, PathBuf};

/// What may not appear, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("Timestamp::now", "reads the clock"),
    ("Zoned::now", "reads the clock"),
    ("SystemTime", "reads the clock"),
    ("Instant::now", "reads the clock"),
    ("Utc::now", "reads the clock"),
    ("Local::now", "reads the clock"),
    ("TimeZone::system", "reads the host's time zone"),
    ("std::time::Instant", "reads the clock"),
    ("std::fs", "file system I/O"),
    ("std::net", "network I/O"),
    ("std::env", "reads the environment"),
    ("std::process", "process control"),
    ("std::io", "I/O"),
    ("std::thread", "threads and sleeping"),
    ("tokio", "async runtime I/O and timers"),
    ("reqwest", "HTTP I/O"),
    ("kube::Client", "API server I/O"),
    ("kube::Api", "API server I/O"),
    ("kube::runtime", "API server I/O"),
    ("rand", "randomness"),
    ("thread_rng", "randomness"),
    ("getrandom", "randomness"),
    ("Uuid::new_v4", "randomness"),
    ("println!", "prints"),
    ("print!", "prints"),
    ("eprintln!", "prints"),
    ("eprint!", "prints"),
    ("dbg!", "prints"),
];

/// Modules of the std prelude paths above that can also be imported in a group:
/// `use std::{fs, io}`.
const FORBIDDEN_STD_MODULES: &[&str] = &["fs", "net", "env", "process", "io", "thread"];

const PURE_TREES: &[&str] = &["crates/core/src/engine", "crates/core/src/schedule"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source with comments removed and string and char literal contents blanked, line breaks
/// kept, so that line numbers stay right.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let keep_newlines = |text: &[char], out: &mut String| {
        for c in text {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = chars[i..]
                .iter()
                .position(|c| *c == '\n')
                .map_or(chars.len(), |p| i + p);
            keep_newlines(&chars[i..end], &mut out);
            i = end;
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let (mut depth, mut j) = (1, i + 2);
            while j < chars.len() && depth > 0 {
                if chars[j] == '/' && chars.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if chars[j] == '*' && chars.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            keep_newlines(&chars[i..j], &mut out);
            i = j;
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && !ident_before(&chars, i) {
            // Raw string: r"…", r#"…"#.
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            let open = i + 1 + hashes;
            if chars.get(open) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let mut j = open + 1;
            while j < chars.len() {
                if chars[j] == '"' && chars[j + 1..].iter().take(hashes).all(|c| *c == '#') {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push('"');
            keep_newlines(&chars[i + 1..j.min(chars.len())], &mut out);
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            out.push('"');
            keep_newlines(&chars[i + 1..(j + 1).min(chars.len())], &mut out);
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a): blank only literals.
            let literal_end = if next == Some('\\') {
                chars[i + 2..]
                    .iter()
                    .position(|c| *c == '\'')
                    .map(|p| i + 2 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match literal_end {
                Some(end) => {
                    out.push('\'');
                    keep_newlines(&chars[i + 1..=end], &mut out);
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && is_ident(chars[i - 1])
}

/// Where `needle` occurs in `line` as a whole path or word: not inside a longer identifier
/// (`brand` is not `rand`), but possibly at the end of a longer path (`jiff::Timestamp::now`).
fn occurrences(line: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(p) = line[from..].find(needle) {
        let at = from + p;
        let before = line[..at].chars().next_back();
        let after = line[at + needle.len()..].chars().next();
        let clean_start = !before.is_some_and(is_ident);
        let clean_end = !needle.ends_with(is_ident) || !after.is_some_and(is_ident);
        if clean_start && clean_end {
            found.push(at);
        }
        from = at + needle.len();
    }
    found
}

/// Every forbidden use in one file's text, as `(line number, what, why, the line)`.
fn violations(source: &str) -> Vec<(usize, String, &'static str, String)> {
    let code = code_only(source);
    let original: Vec<&str> = source.lines().collect();
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let shown = original
            .get(n)
            .copied()
            .unwrap_or_default()
            .trim()
            .to_string();
        for (needle, why) in FORBIDDEN {
            for _ in occurrences(line, needle) {
                found.push((n + 1, needle.to_string(), *why, shown.clone()));
            }
        }
        // `use std::{fs, …}` imports a forbidden module without spelling `std::fs`.
        for at in occurrences(line, "std::{") {
            let group = &line[at + 6..];
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for name in group.split(',').map(str::trim) {
                let head = name.split(|c: char| !is_ident(c)).next().unwrap_or("");
                if FORBIDDEN_STD_MODULES.contains(&head) {
                    found.push((
                        n + 1,
                        format!("std::{{{head}}}"),
                        "imports a module for I/O",
                        shown.clone(),
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn the_engine_and_the_schedule_read_no_clock_and_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for tree in PURE_TREES {
        rust_files(&root.join(tree), &mut files);
    }
    assert!(
        files.len() >= 10,
        "expected the engine's and schedule's sources, found {files:?}"
    );
    let mut report = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(root).unwrap_or(file).display();
        for (line, what, why, text) in violations(&source) {
            report.push(format!("{name}:{line}: `{what}` ({why}): {text}"));
        }
    }
    assert!(
        report.is_empty(),
        "the engine and the schedule must stay pure (time comes in as a value; I/O belongs to \
         controllers and drivers):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_scanner_finds_what_it_must_and_ignores_comments_and_strings() {
    let dirty = "use std::fs;\n\
                 fn f() { let t = jiff::Timestamp::now(); }\n\
                 use std::{collections::BTreeMap, env};\n\
                 async fn g() { tokio::time::sleep(d).await; }\n\
                 let x: u8 = rand::random();\n\
                 let s = std::time::SystemTime::now();\n\
                 println!(\"hi\");\n\
                 let c = reqwest::Client::new();\n\
                 let api: kube::Api<Pod> = kube::Api::all(client);\n";
    let lines: Vec<(usize, String)> = violations(dirty)
        .into_iter()
        .map(|(n, what, _, _)| (n, what))
        .collect();
    for expected in [
        (1, "std::fs"),
        (2, "Timestamp::now"),
        (3, "std::{env}"),
        (4, "tokio"),
        (5, "rand"),
        (6, "SystemTime"),
        (7, "println!"),
        (8, "reqwest"),
        (9, "kube::Api"),
    ] {
        assert!(
            lines.contains(&(expected.0, expected.1.to_string())),
            "{expected:?} not found in {lines:?}"
        );
    }

    let clean = "// Timestamp::now is not called here; std::fs neither.\n\
                 /* tokio::spawn /* nested */ reqwest */\n\
                 let s = \"std::env and rand\";\n\
                 let r = r#\"SystemTime \"quoted\" Instant::now\"#;\n\
                 let operand = brand + random_ish + strand;\n\
                 fn at<'a>(x: &'a str) -> char { '\\'' }\n\
                 let t: Timestamp = now;\n\
                 use kube::core::ObjectMeta;\n\
                 let io_error = my_std::fsync();\n";
    assert_eq!(violations(clean), Vec::new());
}
