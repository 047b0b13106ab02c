//! Reading `peers.toml` from disk; what it may say is checked by
//! [`crate::federation::peers::parse_peers`].

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::federation::peers::{PeersError, PeersFile, parse_peers};

/// Larger files are refused before parsing.
const MAX_FILE_LEN: u64 = 1024 * 1024;

/// A `peers.toml` file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeersFileError {
    #[error("{}: file not found", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: PeersError },
}

/// Reads and parses a `peers.toml`. A missing file is [`PeersFileError::NotFound`], so the
/// caller can decide whether that is fine (the default path) or a mistake (a path given).
pub fn load_peers(path: &Path) -> Result<PeersFile, PeersFileError> {
    let read_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            PeersFileError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            PeersFileError::Read {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if meta.len() > MAX_FILE_LEN {
        return Err(PeersFileError::Read {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, "larger than 1 MiB"),
        });
    }
    let text = fs::read_to_string(path).map_err(read_err)?;
    parse_peers(&text).map_err(|source| PeersFileError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_reports_missing_and_broken_files_with_the_path() {
        let dir = super::super::fsutil::test_dir("peers");
        let missing = dir.join("peers.toml");
        assert!(matches!(
            load_peers(&missing),
            Err(PeersFileError::NotFound { .. })
        ));
        fs::write(&missing, "[[peer]]\nurl = \"gopher://x\"\n").expect("write");
        let err = load_peers(&missing).expect_err("invalid").to_string();
        assert!(err.contains("peers.toml: line 2: url"), "{err}");
    }
}
