//! Installing and uninstalling a 200 MiB maintenance package of 5,000 files with the builtin
//! installer, on a real directory: wall time and peak resident memory of each (the installer
//! streams, so its peak memory must not grow with the package). `cargo bench --bench packages`.
//!
//! The package replaces 2,500 files of the product and adds 2,500 (40 KiB each, hard to
//! compress); the peak is `VmHWM` of this process, reset before each phase through
//! `/proc/self/clear_refs`.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use upkeep::agent::installers::{BuiltinInstaller, Installer, ProductTarget};
use upkeep::api::codes::PackageResult;

const FILES: usize = 5_000;
const SIZE: usize = 200 * 1024 * 1024 / FILES;

/// Bytes that deflate barely shrinks (xorshift), different per file.
fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn peak_kib() -> u64 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn reset_peak() {
    // "5" resets the peak resident set size (Linux 4.0+).
    let _ = fs::write("/proc/self/clear_refs", "5");
}

fn file_path(i: usize) -> String {
    format!("lib/part{:02}/file{i:05}.jar", i % 50)
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("upkeep-bench-packages-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let root = tmp.join("product");
    let src = tmp.join("src");
    fs::create_dir_all(root.join("properties/version")).unwrap();
    fs::write(
        root.join("properties/version/product.yaml"),
        "id: was\nname: Bench\nversion: 9.0.5.22\n",
    )
    .unwrap();
    let mut replace = Vec::new();
    let mut add = Vec::new();
    for i in 0..FILES {
        let path = file_path(i);
        let target = src.join("files").join(&path);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::write(&target, content(i as u64 + 1, SIZE)).unwrap();
        if i % 2 == 0 {
            let old = root.join(&path);
            fs::create_dir_all(old.parent().unwrap()).unwrap();
            fs::write(&old, content(i as u64 + 100_000, SIZE)).unwrap();
            replace.push(path);
        } else {
            add.push(path);
        }
    }
    let list = |files: &[String]| files.join(", ");
    fs::write(
        src.join("package.yaml"),
        format!(
            "id: 9.0.5-WS-WAS-FP023\ntype: FixPack\nproduct: was\nappliesTo: \">=9.0.5.0 <9.0.6.0\"\nversion: 9.0.5.23\ncomponents:\n  - {{ name: runtime, updateType: replace, files: [{}] }}\n  - {{ name: extras, updateType: add, files: [{}] }}\n",
            list(&replace),
            list(&add)
        ),
    )
    .unwrap();
    let pak = tmp.join("fp.pak");
    let built = upkeep::pak::build::build(&src, &pak).unwrap();
    let pak_size = fs::metadata(&pak).unwrap().len();
    fs::remove_dir_all(&src).unwrap();
    println!(
        "package: {} files, {:.1} MiB expanded, {:.1} MiB on disk",
        built.files,
        built.bytes as f64 / 1048576.0,
        pak_size as f64 / 1048576.0
    );

    let installer = BuiltinInstaller::new(Arc::new(jiff::Timestamp::now));
    let target = ProductTarget {
        id: "was".into(),
        location: root.clone(),
    };
    let before = peak_kib();
    let phase = |name: &str, run: &dyn Fn() -> PackageResult| {
        reset_peak();
        let start = Instant::now();
        let result = run();
        let wall = start.elapsed();
        assert_eq!(result, PackageResult::Success, "{name}");
        println!(
            "{name}: {:.2} s wall, peak RSS {:.1} MiB",
            wall.as_secs_f64(),
            peak_kib() as f64 / 1024.0
        );
    };
    println!(
        "peak RSS before (building the package): {:.1} MiB",
        before as f64 / 1024.0
    );
    phase("install", &|| {
        installer
            .install(&target, &pak, None)
            .run
            .result
            .unwrap_or(PackageResult::Failure)
    });
    let backup = root.join("properties/version/update/backup/9.0.5-WS-WAS-FP023.zip");
    println!(
        "backup: {:.1} MiB",
        fs::metadata(&backup).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0
    );
    phase("uninstall", &|| {
        installer
            .uninstall(&target, "9.0.5-WS-WAS-FP023")
            .run
            .result
            .unwrap_or(PackageResult::Failure)
    });
    assert!(!Path::new(&root.join(file_path(1))).exists());
    fs::remove_dir_all(&tmp).unwrap();
}
