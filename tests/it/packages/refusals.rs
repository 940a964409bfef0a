//! Packages that break a rule of the format are refused by `upkeep check`, by
//! `upkeep host install` and by `upkeep package build`, naming the entry, before anything in
//! the product changes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use upkeep::engine::packages::archive::{ArchiveProblem, Limits};
use upkeep::pak::{Package, PakError};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use super::fixtures::*;

const MANIFEST: &str = r#"id: IF1
type: InterimFix
product: was
appliesTo: ">=9.0.5.0"
components:
  - { name: web, updateType: replace, files: [lib/web.jar] }
"#;

enum Kind {
    File,
    Symlink,
    Device,
}

/// A zip written entry by entry, bypassing `upkeep package build`.
fn craft(path: &Path, entries: &[(&str, &[u8], Kind)]) -> PathBuf {
    let mut zip = ZipWriter::new(fs::File::create(path).unwrap());
    let options = SimpleFileOptions::default();
    for (name, bytes, kind) in entries {
        match kind {
            Kind::File => {
                zip.start_file(*name, options).unwrap();
                zip.write_all(bytes).unwrap();
            }
            Kind::Symlink => zip.add_symlink(*name, "/etc/passwd", options).unwrap(),
            Kind::Device => {
                zip.start_file(*name, options.external_attributes((0o020_644) << 16))
                    .unwrap();
                zip.write_all(bytes).unwrap();
            }
        }
    }
    zip.finish().unwrap();
    path.to_path_buf()
}

/// Rewrites the uncompressed size an entry states, in its local header and in the central
/// directory.
fn lie_about_size(path: &Path, name: &str, size: u32) {
    let mut bytes = fs::read(path).unwrap();
    let name = name.as_bytes();
    let mut patched = 0;
    for at in 0..bytes.len().saturating_sub(46) {
        let (signature, name_at, size_at) = match &bytes[at..at + 4] {
            [0x50, 0x4b, 0x03, 0x04] => (true, at + 30, at + 22),
            [0x50, 0x4b, 0x01, 0x02] => (true, at + 46, at + 24),
            _ => (false, 0, 0),
        };
        if signature && bytes.get(name_at..name_at + name.len()) == Some(name) {
            bytes[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    fs::write(path, bytes).unwrap();
}

/// `upkeep check` and `upkeep host install` both refuse `pak`, naming `entry`, and the product
/// is untouched.
fn refused(pak: &Path, entry: &str) {
    let out = upkeep(&["check", pak.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stdout(&out).contains(entry),
        "check does not name {entry:?}: {}",
        text(&out)
    );

    let tmp = tempdir();
    let root = product(tmp.path());
    let before = snapshot(&root);
    let out = host("install", &root, &[pak.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.contains("InvalidPackage") && said.contains(entry),
        "{said}"
    );
    assert!(said.contains("nothing was installed"), "{said}");
    assert_same(&snapshot(&root), &before, "untouched");
}

#[test]
fn paths_climbing_out_or_absolute_are_refused() {
    let tmp = tempdir();
    for (i, entry) in [
        "files/../../../tmp/evil",
        "/etc/cron.d/evil",
        "files/lib/./web.jar",
    ]
    .into_iter()
    .enumerate()
    {
        let pak = craft(
            &tmp.path().join(format!("bad{i}.pak")),
            &[
                ("package.yaml", MANIFEST.as_bytes(), Kind::File),
                ("files/lib/web.jar", b"x", Kind::File),
                (entry, b"evil", Kind::File),
            ],
        );
        refused(&pak, entry);
    }
}

#[test]
fn symlinks_and_device_files_are_refused() {
    let tmp = tempdir();
    for (i, kind) in [Kind::Symlink, Kind::Device].into_iter().enumerate() {
        let pak = craft(
            &tmp.path().join(format!("special{i}.pak")),
            &[
                ("package.yaml", MANIFEST.as_bytes(), Kind::File),
                ("files/lib/web.jar", b"x", kind),
            ],
        );
        refused(&pak, "files/lib/web.jar");
    }
}

#[test]
fn a_path_in_package_yaml_climbing_out_is_refused() {
    let tmp = tempdir();
    let manifest = MANIFEST.replace("[lib/web.jar]", "[../../etc/passwd]");
    let pak = craft(
        &tmp.path().join("m.pak"),
        &[("package.yaml", manifest.as_bytes(), Kind::File)],
    );
    refused(&pak, "components[0].files[0]");
}

#[test]
fn zip_bombs_are_refused_by_their_ratio() {
    let tmp = tempdir();
    let pak = craft(
        &tmp.path().join("bomb.pak"),
        &[
            ("package.yaml", MANIFEST.as_bytes(), Kind::File),
            ("files/lib/web.jar", &[0u8; 4096], Kind::File),
        ],
    );
    lie_about_size(&pak, "files/lib/web.jar", 0xFFFF_0000);
    refused(&pak, "files/lib/web.jar");
    let out = upkeep(&["check", pak.to_str().unwrap()]);
    assert!(
        stdout(&out).contains(":1), more than 1000:1"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_archive_larger_than_the_free_space_is_refused() {
    let tmp = tempdir();
    let pak = fix_pack(tmp.path());
    let err = Package::open(&pak, &Limits { max_expanded: 100 }).unwrap_err();
    assert!(
        matches!(
            &err,
            PakError::Archive {
                problem: ArchiveProblem::TooLarge { limit: 100, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        Package::open(
            &pak,
            &Limits {
                max_expanded: u64::MAX
            }
        )
        .is_ok()
    );
}

#[test]
fn an_entry_expanding_past_its_stated_size_fails_before_the_product_changes() {
    let tmp = tempdir();
    let pak = craft(
        &tmp.path().join("short.pak"),
        &[
            ("package.yaml", MANIFEST.as_bytes(), Kind::File),
            (
                "files/lib/web.jar",
                b"a longer file than stated",
                Kind::File,
            ),
        ],
    );
    lie_about_size(&pak, "files/lib/web.jar", 4);
    let root = product(tmp.path());
    let before = snapshot(&root);
    let out = host("install", &root, &[pak.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = stdout(&out);
    assert!(
        said.contains("IF1: failure: InstallFailed")
            && said.contains("entry \"files/lib/web.jar\""),
        "{said}"
    );
    assert!(
        said.contains("not the 4 its header states") || said.contains("larger than its declared"),
        "{said}"
    );
    assert_same(&snapshot(&root), &before, "untouched");
    assert!(journal_is_empty(&root));
}

#[test]
fn a_package_yaml_over_one_mebibyte_is_refused() {
    let tmp = tempdir();
    let mut manifest = MANIFEST.to_string();
    let mut i = 0u64;
    while manifest.len() <= 1 << 20 {
        manifest.push_str(&format!(
            "# padding line {i} {}\n",
            i.wrapping_mul(2_654_435_761)
        ));
        i += 1;
    }
    let pak = craft(
        &tmp.path().join("big.pak"),
        &[
            ("package.yaml", manifest.as_bytes(), Kind::File),
            ("files/lib/web.jar", b"x", Kind::File),
        ],
    );
    refused(&pak, "package.yaml");
    let out = upkeep(&["check", pak.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("more than the 1048576 allowed"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_applies_the_schema_and_the_rules_of_package_yaml() {
    let tmp = tempdir();
    let manifest = MANIFEST.replace("updateType: replace", "updateType: replace, mode: x");
    let pak = craft(
        &tmp.path().join("schema.pak"),
        &[
            ("package.yaml", manifest.as_bytes(), Kind::File),
            ("files/lib/web.jar", b"x", Kind::File),
        ],
    );
    let out = upkeep(&["check", pak.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("package.yaml: components.0.mode")
            || stdout(&out).contains("unknown field \"mode\""),
        "{}",
        text(&out)
    );

    let manifest = MANIFEST.replace("type: InterimFix", "type: FixPack");
    let pak = craft(
        &tmp.path().join("noversion.pak"),
        &[
            ("package.yaml", manifest.as_bytes(), Kind::File),
            ("files/lib/web.jar", b"x", Kind::File),
            ("files/lib/extra.jar", b"x", Kind::File),
        ],
    );
    let out = upkeep(&["check", pak.to_str().unwrap()]);
    let said = stdout(&out);
    assert!(said.contains("package.yaml: version"), "{said}");

    let good = fix_pack(tmp.path());
    let out = upkeep(&["check", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("checked 1 documents: 0 invalid"),
        "{}",
        text(&out)
    );
}

#[test]
fn package_build_refuses_what_the_installer_would_refuse() {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    write(&src.join("package.yaml"), MANIFEST.as_bytes(), 0o644);
    write(&src.join("files/lib/web.jar"), b"x", 0o644);
    write(&src.join("files/lib/unlisted.jar"), b"x", 0o644);
    let out_pak = tmp.path().join("out.pak");
    let build = |src: &Path| {
        upkeep(&[
            "package",
            "build",
            src.to_str().unwrap(),
            "-o",
            out_pak.to_str().unwrap(),
        ])
    };
    let out = build(&src);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("entry \"files/lib/unlisted.jar\" is named by no component"),
        "{}",
        text(&out)
    );
    assert!(!out_pak.exists());

    fs::remove_file(src.join("files/lib/unlisted.jar")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", src.join("files/lib/link.jar")).unwrap();
    let out = build(&src);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("link.jar: is a symlink"),
        "{}",
        text(&out)
    );

    fs::remove_file(src.join("files/lib/link.jar")).unwrap();
    let out = build(&src);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        Package::open(
            &out_pak,
            &Limits {
                max_expanded: u64::MAX
            }
        )
        .is_ok()
    );
    // No temporary file is left beside the output.
    let left: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn the_shipped_json_schema_is_the_generated_one_and_judges_like_the_types() {
    let shipped = include_str!("../../../docs/package.schema.json");
    let generated = upkeep::engine::packages::PackageManifest::json_schema();
    let expected = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    assert_eq!(
        shipped, expected,
        "docs/package.schema.json is stale: run `cargo run -- package schema > docs/package.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(shipped).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good: serde_json::Value = serde_saphyr::from_str(MANIFEST).unwrap();
    assert!(validator.is_valid(&good));
    for bad in [
        MANIFEST.replace("type: InterimFix", "type: Hotfix"),
        MANIFEST.replace("product: was", "product: was\nproducts: [was]"),
        MANIFEST.replace("updateType: replace", "updateType: rewrite"),
        MANIFEST.replace("id: IF1", "id: ../IF1"),
    ] {
        let value: serde_json::Value = serde_saphyr::from_str(&bad).unwrap();
        assert!(!validator.is_valid(&value), "{bad}");
        assert!(
            serde_saphyr::from_str::<upkeep::engine::packages::PackageManifest>(&bad).is_err()
                || !upkeep::engine::packages::PackageManifest::validate(
                    &serde_saphyr::from_str(&bad).unwrap()
                )
                .is_empty(),
            "{bad}"
        );
    }
}
