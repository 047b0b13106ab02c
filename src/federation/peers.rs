//! `peers.toml`: the nodes a node contacts first, checked strictly so that a typo stops the
//! node at start with the line and the reason instead of silently isolating it.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::descriptor::{MAX_WEIGHT, MIN_WEIGHT, is_valid_weight};
use super::key::PublicKey;
use super::peer_url::PeerUrl;

/// Most peers one file may name; more is a mistake (or a list of the whole network, which
/// gossip discovers anyway).
pub const MAX_PEERS: usize = 1000;

/// One `[[peer]]` entry, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// The peer's public base URL, canonical.
    pub url: PeerUrl,
    /// The local operator's capacity hint for this peer; when given it replaces the weight
    /// the peer announces for itself in this node's `/servers`.
    pub weight: Option<f64>,
    /// The peer's public key, if pinned: a descriptor for this URL under another key is
    /// refused.
    pub key: Option<PublicKey>,
    /// 1-based line of the entry's `url`, for messages.
    pub line: usize,
}

/// What is wrong with a `peers.toml` text. Each names the 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeersError {
    /// Not TOML, or not the expected shape (an unknown field, a wrong type).
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// A field has a value that is not allowed.
    #[error("line {line}: {field}: {reason}")]
    Invalid {
        line: usize,
        field: &'static str,
        reason: String,
    },
    /// The same URL (after normalisation) appears twice.
    #[error("line {line}: url {url} already appears on line {first_line}")]
    Duplicate {
        line: usize,
        first_line: usize,
        url: String,
    },
    #[error("line {line}: more than {MAX_PEERS} peers")]
    TooMany { line: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    peer: Vec<RawPeer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    url: Spanned<String>,
    #[serde(default)]
    weight: Option<Spanned<f64>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
}

/// Parses and validates the text of a `peers.toml`. An empty file, or one without
/// `[[peer]]` entries, is valid: the node then starts alone (or from its saved state).
pub fn parse_peers(text: &str) -> Result<Vec<Peer>, PeersError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| PeersError::Syntax {
        line: err.span().map_or(1, |span| line_of(text, span.start)),
        message: err.message().to_owned(),
    })?;
    let mut peers = Vec::with_capacity(raw.peer.len());
    let mut seen: HashMap<PeerUrl, usize> = HashMap::new();
    for entry in raw.peer {
        let line = line_of(text, entry.url.span().start);
        if peers.len() == MAX_PEERS {
            return Err(PeersError::TooMany { line });
        }
        let invalid = |span: Range<usize>, field, reason: String| PeersError::Invalid {
            line: line_of(text, span.start),
            field,
            reason,
        };
        let url = PeerUrl::parse(entry.url.get_ref())
            .map_err(|err| invalid(entry.url.span(), "url", err.to_string()))?;
        let weight = match &entry.weight {
            None => None,
            Some(w) => {
                let value = *w.get_ref();
                if !is_valid_weight(value) {
                    return Err(invalid(
                        w.span(),
                        "weight",
                        format!(
                            "{value} is not a number from {MIN_WEIGHT} to {MAX_WEIGHT} with at most three decimals"
                        ),
                    ));
                }
                Some(value)
            }
        };
        let key = match &entry.key {
            None => None,
            Some(k) => {
                let key = PublicKey::from_base64(k.get_ref().trim())
                    .map_err(|err| invalid(k.span(), "key", err.to_string()))?;
                key.verifying_key()
                    .map_err(|err| invalid(k.span(), "key", err.to_string()))?;
                Some(key)
            }
        };
        if let Some(&first_line) = seen.get(&url) {
            return Err(PeersError::Duplicate {
                line,
                first_line,
                url: url.to_string(),
            });
        }
        seen.insert(url.clone(), line);
        peers.push(Peer {
            url,
            weight,
            key,
            line,
        });
    }
    Ok(peers)
}

/// 1-based line number of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::super::identity::Identity;
    use super::*;

    fn key_b64(seed: u8) -> String {
        Identity::from_seed([seed; 32]).public_key().to_base64()
    }

    #[test]
    fn empty_and_comment_only_files_are_valid() {
        assert_eq!(parse_peers(""), Ok(vec![]));
        assert_eq!(parse_peers("# no peers yet\n"), Ok(vec![]));
    }

    #[test]
    fn parses_all_fields() {
        let text = format!(
            "# bootstrap\n[[peer]]\nurl = \"https://A.example/\"\n\n[[peer]]\nurl = \"http://b.example:8080\"\nweight = 2\nkey = \"{}\"\n",
            key_b64(1)
        );
        let peers = parse_peers(&text).expect("valid");
        assert_eq!(peers.len(), 2);
        assert_eq!(peers[0].url.as_str(), "https://a.example");
        assert_eq!(peers[0].line, 3);
        assert_eq!(peers[0].weight, None);
        assert_eq!(peers[1].weight, Some(2.0));
        assert_eq!(peers[1].key.map(|k| k.to_base64()), Some(key_b64(1)));
        assert_eq!(peers[1].line, 6);
    }

    #[test]
    fn errors_name_the_line_and_reason() {
        let cases: &[(&str, &str)] = &[
            (
                "[[peer]]\nurl = \"ftp://a.example\"\n",
                "line 2: url: scheme `ftp` is not allowed",
            ),
            ("[[peer]]\nweight = 1.0\n", "line 1: missing field `url`"),
            (
                "\n[[peer]]\nurl = \"https://a.example\"\nwieght = 2.0\n",
                "line 4: unknown field `wieght`",
            ),
            (
                "[[peer]]\nurl = \"https://a.example\"\nweight = 0.0\n",
                "line 3: weight: 0 is not a number",
            ),
            (
                "[[peer]]\nurl = \"https://a.example\"\nweight = inf\n",
                "line 3: weight: inf is not a number",
            ),
            (
                "[[peer]]\nurl = \"https://a.example\"\nweight = 1000.0\n",
                "line 3: weight: 1000",
            ),
            (
                "[[peer]]\nurl = \"https://a.example\"\nkey = \"abc\"\n",
                "line 3: key: not standard base64",
            ),
            (
                "[[peer]]\nurl = \"https://a.example\"\nweight = \"heavy\"\n",
                "line 3: invalid type",
            ),
            (
                "[[peer]]\nurl = 'https://a.example'\n[[peer]]\nurl = \"https://A.EXAMPLE/\"\n",
                "line 4: url https://a.example already appears on line 2",
            ),
            ("peers = []\n", "line 1: unknown field `peers`"),
            ("[[peer]\nurl = \"x\"\n", "line 1:"),
            (
                "[[peer]]\nurl = \"https://a.example/?q=1\"\n",
                "line 2: url: must not contain a query",
            ),
        ];
        for (text, want) in cases {
            let err = parse_peers(text).expect_err(text).to_string();
            assert!(
                err.starts_with(want),
                "for {text:?}: got {err:?}, want prefix {want:?}"
            );
        }
    }

    #[test]
    fn weak_pinned_key_is_refused() {
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let text = format!(
            "[[peer]]\nurl = \"https://a.example\"\nkey = \"{}\"\n",
            PublicKey::from_bytes(weak).to_base64()
        );
        let err = parse_peers(&text).expect_err("weak").to_string();
        assert!(err.contains("weak"), "{err}");
    }
}
