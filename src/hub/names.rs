//! Validated Docker Hub names: organization, repository and tag.
//!
//! Nothing reaches Docker Hub, the cache or a badge before it passed through here, so the
//! rest of the code can put these values into URLs and keys without further checks.

use std::fmt;

use thiserror::Error;

/// The longest organization or repository name accepted (Docker Hub allows 255 in total).
pub const MAX_NAME_LEN: usize = 255;
/// The longest tag accepted (Docker's own limit).
pub const MAX_TAG_LEN: usize = 128;

/// Why a name or tag was refused. The text is shown to the client as is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{kind} is missing")]
    Missing { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error(
        "{kind} {shown} is not a Docker Hub name: use lowercase letters and digits, separated by single '.', '_' or '-'"
    )]
    BadName { kind: &'static str, shown: String },
    #[error(
        "tag {shown} is not a Docker tag: use letters, digits, '_', '.' and '-', not starting with '.' or '-'"
    )]
    BadTag { shown: String },
}

/// A value quoted for an error message: JSON-safe anyway, but kept short and printable so a
/// hostile name cannot fill a log line or a badge.
fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(40)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if value.chars().count() > 40 {
        out.push('…');
    }
    format!("\"{out}\"")
}

fn check_name(kind: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Missing { kind });
    }
    if value.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            kind,
            max: MAX_NAME_LEN,
        });
    }
    let bytes = value.as_bytes();
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let is_sep = |b: u8| matches!(b, b'.' | b'_' | b'-');
    let well_formed = is_alnum(bytes[0])
        && is_alnum(bytes[bytes.len() - 1])
        && bytes.iter().all(|&b| is_alnum(b) || is_sep(b))
        && !bytes.windows(2).any(|w| is_sep(w[0]) && is_sep(w[1]));
    if well_formed {
        Ok(())
    } else {
        Err(NameError::BadName {
            kind,
            shown: shown(value),
        })
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks `value` and wraps it.
            pub fn parse(value: &str) -> Result<Self, NameError> {
                let check: fn(&str) -> Result<(), NameError> = $check;
                check(value)?;
                Ok(Self(value.to_owned()))
            }

            /// The checked text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A Docker Hub organization (namespace), e.g. `library`.
    Organization,
    |v| check_name("organization", v)
);
name_type!(
    /// A Docker Hub repository name, e.g. `nginx`.
    Repository,
    |v| check_name("repository", v)
);
name_type!(
    /// A Docker tag, e.g. `latest` or `1.27-alpine`.
    Tag,
    check_tag
);

fn check_tag(value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Missing { kind: "tag" });
    }
    if value.len() > MAX_TAG_LEN {
        return Err(NameError::TooLong {
            kind: "tag",
            max: MAX_TAG_LEN,
        });
    }
    let bytes = value.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if word(bytes[0]) && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-') {
        Ok(())
    } else {
        Err(NameError::BadTag {
            shown: shown(value),
        })
    }
}

/// One image tag whose status can be asked for: the cache key and the subject of a badge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    pub organization: Organization,
    pub repository: Repository,
    pub tag: Tag,
}

impl ImageRef {
    /// Checks all three parts; the first bad one names the error.
    pub fn parse(organization: &str, repository: &str, tag: &str) -> Result<ImageRef, NameError> {
        Ok(ImageRef {
            organization: Organization::parse(organization)?,
            repository: Repository::parse(repository)?,
            tag: Tag::parse(tag)?,
        })
    }
}

impl fmt::Display for ImageRef {
    /// `organization/repository:tag`, the item key status.js hashes too.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.organization, self.repository, self.tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names() {
        for name in [
            "library",
            "nginx",
            "niccokunzmann",
            "my-org",
            "a.b_c-d",
            "x",
            "0abc9",
        ] {
            assert!(Repository::parse(name).is_ok(), "{name}");
        }
        for tag in ["latest", "1.27-alpine", "V2", "_build", "a.b-c_d"] {
            assert!(Tag::parse(tag).is_ok(), "{tag}");
        }
    }

    #[test]
    fn refuses_hostile_names() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "", "..", ".", "../etc", "a/b", "a%2Fb", "Nginx", "a..b", "a-", "-a", "a b", "a\u{0}b",
            "a\nb", "ä", "a--b", &long,
        ] {
            assert!(Organization::parse(name).is_err(), "{name:?}");
        }
        let long_tag = "t".repeat(MAX_TAG_LEN + 1);
        for tag in ["", ".hidden", "-x", "a/b", "a b", "a\tb", "<x>", &long_tag] {
            assert!(Tag::parse(tag).is_err(), "{tag:?}");
        }
        assert!(Tag::parse(&"t".repeat(MAX_TAG_LEN)).is_ok());
    }

    #[test]
    fn errors_quote_the_value_safely() {
        let err = Repository::parse("Bad\u{7}Name").unwrap_err().to_string();
        assert!(err.contains("\"Bad\u{fffd}Name\""), "{err}");
        assert!(!err.contains('\u{7}'));
        let err = Tag::parse(&format!("-{}", "x".repeat(100)))
            .unwrap_err()
            .to_string();
        assert!(err.contains('…') && err.len() < 200, "{err}");
    }

    #[test]
    fn item_key_format() {
        let image = ImageRef::parse("library", "nginx", "latest").unwrap();
        assert_eq!(image.to_string(), "library/nginx:latest");
    }
}
