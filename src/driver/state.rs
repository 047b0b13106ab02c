//! Saving and loading the core's [`State`] in the state directory: atomic writes, and a
//! damaged file reported and set aside instead of stopping the node.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::fsutil::{ensure_dir, write_atomically};
use crate::federation::core::State;

/// File name of the saved state inside the state directory.
pub const STATE_FILE: &str = "federation.json";
/// A larger file is not a state this software wrote (1024 members take about 400 KiB).
const MAX_STATE_FILE_LEN: u64 = 16 * 1024 * 1024;

/// Where the state of a node with state directory `state_dir` lives.
pub fn state_path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_FILE)
}

/// Saving failed; the previous file, if any, is untouched.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot encode state: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What [`load_state`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No saved state: a first start.
    Missing,
    Loaded(State),
    /// The file could not be used; the node starts without it. It was renamed to
    /// `moved_to` (when that worked) so the next save does not destroy the evidence.
    Damaged {
        path: PathBuf,
        reason: String,
        moved_to: Option<PathBuf>,
    },
}

/// Writes `state` to `path` atomically (temp file, fsync, rename, fsync of the directory),
/// creating the directory if needed. The file is private to the user: it lists peers and
/// their addresses.
pub fn save_state(path: &Path, state: &State) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(state)?;
    let write_err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_dir(dir).map_err(write_err)?;
    }
    write_atomically(path, &bytes, 0o600).map_err(write_err)
}

/// Reads the state at `path`. Never fails: a missing file is [`Loaded::Missing`], anything
/// unreadable is [`Loaded::Damaged`] with the reason, for the log.
pub fn load_state(path: &Path) -> Loaded {
    let damaged = |reason: String| {
        let moved = path.with_extension("json.damaged");
        let moved_to = fs::rename(path, &moved).ok().map(|()| moved);
        Loaded::Damaged {
            path: path.to_path_buf(),
            reason,
            moved_to,
        }
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Loaded::Missing,
        Err(err) => {
            return Loaded::Damaged {
                path: path.to_path_buf(),
                reason: err.to_string(),
                moved_to: None,
            };
        }
    };
    if meta.len() > MAX_STATE_FILE_LEN {
        return damaged(format!("larger than {MAX_STATE_FILE_LEN} bytes"));
    }
    match fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
            Ok(state) => Loaded::Loaded(state),
            Err(err) => damaged(format!("not a valid state file: {err}")),
        },
        Err(err) => Loaded::Damaged {
            path: path.to_path_buf(),
            reason: err.to_string(),
            moved_to: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::fsutil::test_dir;
    use super::*;
    use crate::federation::key::PublicKey;
    use crate::federation::time::Timestamp;

    fn state() -> State {
        State {
            format: 1,
            key: PublicKey::from_bytes([3; 32]),
            own_issued_at: Timestamp::from_unix_ms(42),
            members: Vec::new(),
        }
    }

    #[test]
    fn save_then_load() {
        let path = state_path(&test_dir("store").join("sub"));
        assert!(matches!(load_state(&path), Loaded::Missing));
        save_state(&path, &state()).expect("save");
        match load_state(&path) {
            Loaded::Loaded(loaded) => assert_eq!(loaded, state()),
            other => panic!("{other:?}"),
        }
        // Overwriting keeps one file and leaves no temp file behind.
        let mut newer = state();
        newer.own_issued_at = Timestamp::from_unix_ms(43);
        save_state(&path, &newer).expect("save");
        let names: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        assert!(matches!(load_state(&path), Loaded::Loaded(s) if s == newer));
    }

    #[test]
    fn damaged_file_is_reported_and_set_aside() {
        let dir = test_dir("store-damaged");
        let path = state_path(&dir);
        fs::write(&path, b"{\"format\": 1, \"key\": tru").expect("write");
        match load_state(&path) {
            Loaded::Damaged {
                reason, moved_to, ..
            } => {
                assert!(reason.contains("not a valid state file"), "{reason}");
                let moved = moved_to.expect("moved");
                assert!(moved.exists());
                assert!(!path.exists());
            }
            other => panic!("{other:?}"),
        }
        // The next start finds no state and starts fresh.
        assert!(matches!(load_state(&path), Loaded::Missing));
    }
}
