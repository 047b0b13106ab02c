//! The node's private key on disk: made once in the state directory (mode 0600, written
//! atomically), the same ever after, and never replaced silently.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::fsutil::{ensure_dir, write_atomically};
use crate::federation::identity::{Identity, RandomError};

/// File name of the private key inside the state directory.
pub const KEY_FILE: &str = "node.key";

/// Files larger than this are not key files; don't read a whole disk image into memory.
const MAX_KEY_FILE_LEN: u64 = 4096;

/// Why the node's identity could not be loaded or created. Each of these stops the node
/// at start: running under a new key would make it a different node.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir { path: PathBuf, source: io::Error },
    #[error("cannot read key file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write key file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "key file {path} is damaged ({reason}); it is this node's identity, so it is not replaced: \
         restore it from a backup, or delete it to start as a new node"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "key file {path} can be read by other users (mode {mode:o}); run `chmod 600 {path}`",
        path = path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Loads `{state_dir}/node.key`, or creates it (mode 0600, written atomically) when it
/// does not exist. Returns the identity and whether it was just created.
pub fn load_or_create(state_dir: &Path) -> Result<(Identity, bool), KeyFileError> {
    let path = state_dir.join(KEY_FILE);
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok((load(&path)?, false)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            ensure_dir(state_dir).map_err(|source| KeyFileError::StateDir {
                path: state_dir.to_path_buf(),
                source,
            })?;
            let identity = Identity::generate()?;
            let text = format!("{}\n", STANDARD.encode(identity.secret_bytes()));
            write_atomically(&path, text.as_bytes(), 0o600).map_err(|source| {
                KeyFileError::Write {
                    path: path.clone(),
                    source,
                }
            })?;
            Ok((identity, true))
        }
        Err(source) => Err(KeyFileError::Read { path, source }),
    }
}

/// Loads an existing key file: one line, the 32-byte secret in standard base64.
pub fn load(path: &Path) -> Result<Identity, KeyFileError> {
    let read_err = |source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let damaged = |reason: &str| KeyFileError::Damaged {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if !meta.is_file() {
        return Err(damaged("not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyFileError::InsecurePermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(damaged("far too large for a key file"));
    }
    let bytes = fs::read(path).map_err(read_err)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| damaged("not text"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(damaged("empty"));
    }
    let secret = STANDARD.decode(text).map_err(|_| damaged("not base64"))?;
    let seed: [u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| damaged("not 32 bytes"))?;
    Ok(Identity::from_seed(seed))
}

#[cfg(test)]
mod tests {
    use super::super::fsutil::test_dir;
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = test_dir("identity").join("nested/state");
        let (first, created) = load_or_create(&dir).expect("create");
        assert!(created);
        let (second, created) = load_or_create(&dir).expect("reload");
        assert!(!created);
        assert_eq!(first.public_key(), second.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Two fresh identities differ: the key really comes from randomness.
        let other = load_or_create(&test_dir("identity")).expect("create");
        assert_ne!(other.0.public_key(), first.public_key());
    }

    #[test]
    fn damaged_key_file_is_an_error_and_is_kept() {
        let dir = test_dir("identity-damaged");
        let path = dir.join(KEY_FILE);
        for (content, want) in [
            (&b"not base64!!\n"[..], "not base64"),
            (&b"AAAA\n"[..], "not 32 bytes"),
            (&b"\n"[..], "empty"),
            (&[0xff, 0xfe][..], "not text"),
        ] {
            write_atomically(&path, content, 0o600).expect("write");
            let err = load_or_create(&dir).expect_err("damaged");
            assert!(
                matches!(&err, KeyFileError::Damaged { reason, .. } if reason == want),
                "{err}"
            );
            assert_eq!(fs::read(&path).expect("still there"), content);
        }
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = test_dir("identity-perms");
        let (_, _) = load_or_create(&dir).expect("create");
        let path = dir.join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = load_or_create(&dir).expect_err("insecure");
        assert!(
            matches!(err, KeyFileError::InsecurePermissions { mode: 0o644, .. }),
            "{err}"
        );
    }
}
