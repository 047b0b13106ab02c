//! The source archive served at `/source`: packed by `build.rs` from the files the binary
//! was built from, so every running node can hand out its own exact source (AGPL).

/// The `.tar.gz` of this build's source.
pub static ARCHIVE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/source.tar.gz"));
