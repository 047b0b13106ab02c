//! Lists inside Docker Hub's answers (a tag list's `results`, a tag's `images`, build
//! history entries), read entry by entry: an entry of a shape the node cannot read is left
//! out and counted, and the rest of the page is kept. Docker Hub's answers differ by year and
//! by repository (a null `architecture` in one image, a date of another type), and one odd
//! entry must not cost the whole page, nor count as Docker Hub failing.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The entries of one list that could be read, and how many could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries<T> {
    pub items: Vec<T>,
    /// Entries left out because they were not of the expected shape.
    pub skipped: usize,
}

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Entries {
            items: Vec::new(),
            skipped: 0,
        }
    }
}

/// `null` reads as an empty list (tags pushed before multi-arch images have `images: null`);
/// anything that is no list at all is still an error of the whole answer.
impl<'de, T: DeserializeOwned> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Option::<Vec<Box<RawValue>>>::deserialize(deserializer)?.unwrap_or_default();
        let mut entries = Entries {
            items: Vec::with_capacity(raw.len()),
            skipped: 0,
        };
        for entry in raw {
            match serde_json::from_str::<T>(entry.get()) {
                Ok(item) => entries.items.push(item),
                Err(_) => entries.skipped += 1,
            }
        }
        Ok(entries)
    }
}

/// Written as the plain list (what a fill carries): what was skipped stays with the reader
/// that skipped it.
impl<T: Serialize> Serialize for Entries<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.items.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    struct Image {
        architecture: String,
    }

    #[derive(Debug, Deserialize)]
    struct Tag {
        images: Entries<Image>,
    }

    #[test]
    fn an_odd_entry_is_skipped_and_counted_and_the_rest_kept() {
        let tag: Tag = serde_json::from_str(
            r#"{"images":[{"architecture":"amd64"},{"architecture":null},7,{"architecture":"arm64"}]}"#,
        )
        .unwrap();
        assert_eq!(
            tag.images.items,
            [
                Image {
                    architecture: "amd64".into()
                },
                Image {
                    architecture: "arm64".into()
                }
            ]
        );
        assert_eq!(tag.images.skipped, 2);
    }

    #[test]
    fn null_is_an_empty_list_and_a_non_list_an_error() {
        let tag: Tag = serde_json::from_str(r#"{"images":null}"#).unwrap();
        assert_eq!(tag.images, Entries::default());
        assert!(serde_json::from_str::<Tag>(r#"{"images":"amd64"}"#).is_err());
    }
}
