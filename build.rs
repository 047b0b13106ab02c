//! Packs the source the binary is built from into `$OUT_DIR/source.tar.gz` for `/source`.
//!
//! The archive is reproducible: sorted paths, zero timestamps, normalised modes, so the same
//! tree gives the same bytes. Only what builds the binary is packed (the list below); tests
//! and docs stay out, so editing them does not rebuild the node.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The files and folders packed, relative to the crate root.
const PACKED: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "clippy.toml",
    "LICENSE",
    "README.md",
    "peers.toml",
    "status.js",
    "status.svg",
    "src",
    "benches",
];

fn main() {
    let root = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut files = Vec::new();
    for item in PACKED {
        let path = root.join(item);
        println!("cargo::rerun-if-changed={}", path.display());
        collect(&path, &mut files);
    }
    files.sort();
    let archive = fs::File::create(out.join("source.tar.gz")).expect("create the source archive");
    let gz = flate2::write::GzEncoder::new(archive, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let prefix = format!(
        "dockerhub-build-status-{}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
    for file in files {
        let data = fs::read(&file).expect("read a source file");
        let relative = file
            .strip_prefix(&root)
            .expect("packed files are under the crate root");
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        tar.append_data(
            &mut header,
            Path::new(&prefix).join(relative),
            data.as_slice(),
        )
        .expect("append to the source archive");
    }
    let gz = tar.into_inner().expect("finish the tar stream");
    gz.finish()
        .expect("finish the gzip stream")
        .flush()
        .expect("flush the source archive");
}

/// Adds `path` (a file, or every file under a folder) to `files`. Missing items are left out:
/// a source tree without, say, `benches/` still builds and packs.
fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        files.push(path.to_path_buf());
    } else if meta.is_dir() {
        let Ok(entries) = fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // Editor and OS droppings are not source.
            if name.to_string_lossy().starts_with('.') || name.to_string_lossy().ends_with('~') {
                continue;
            }
            collect(&entry.path(), files);
        }
    }
}
