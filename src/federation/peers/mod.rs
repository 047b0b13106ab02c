//! `peers.toml`: the nodes a node contacts first, checked strictly so that a typo stops the
//! node at start with the line and the reason instead of silently isolating it. An entry
//! names one node by `url`, or a pool by its DNS name (`pool`): every address the name
//! resolves to is asked as a seed (the driver resolves; nothing here does I/O).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

use super::descriptor::{MAX_WEIGHT, MIN_WEIGHT, is_valid_weight};
use super::key::PublicKey;
use super::peer_url::{PeerUrl, UrlError};

/// Most entries one file may have; more is a mistake (or a list of the whole network,
/// which gossip discovers anyway).
pub const MAX_PEERS: usize = 1000;
/// Most `pool` entries one file may have. Each costs a DNS question and up to
/// [`MAX_POOL_ADDRESSES_ASKED`] exchanges per round while the node looks for the network;
/// a pool or two (with a second nameserver) is all a node needs.
pub const MAX_POOLS: usize = 16;
/// Addresses of one pool answer asked per round at most. The pool's own DNS answers four;
/// another DNS could answer hundreds, and one round must stay a handful of requests.
pub const MAX_POOL_ADDRESSES_ASKED: usize = 8;
/// The port asked at a `nameserver` written without one.
pub const DNS_PORT: u16 = 53;
/// Longest DNS name (RFC 1035, without the root's dot) and label.
const MAX_NAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// What is in a `peers.toml`: the nodes it names by URL and the pools it names by DNS name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeersFile {
    pub peers: Vec<Peer>,
    pub pools: Vec<PoolSeed>,
}

/// One `[[peer]]` entry naming a node by `url`, validated.
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

/// How a pool's addresses are spoken to. Pool nodes serve plain HTTP on port 80 of their
/// pool addresses (docs/POOL.md); HTTPS to an address works only where the node's
/// certificate names that address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolScheme {
    Http,
    Https,
}

impl PoolScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// One `[[peer]]` entry naming a pool, validated: `pool = "pool.example.org"`, optionally
/// `port`, `scheme` and a `nameserver` to ask instead of the system resolver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolSeed {
    /// The DNS name, lowercase, without a trailing dot.
    pub name: String,
    pub scheme: PoolScheme,
    /// The port asked at each address (the scheme's default unless given).
    pub port: u16,
    /// The DNS server asked for the name directly (useful before the pool's delegation is
    /// live, and in tests); `None`: the system resolver.
    pub nameserver: Option<SocketAddr>,
    /// 1-based line of the entry's `pool`, for messages.
    pub line: usize,
}

impl PoolSeed {
    /// The base URL a seed at `ip` is asked at: `http://192.0.2.7`, `http://[2001:db8::7]:8080`.
    pub fn url_for(&self, ip: IpAddr) -> Result<PeerUrl, UrlError> {
        let host = match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        PeerUrl::parse(&format!("{}://{host}:{}", self.scheme.as_str(), self.port))
    }
}

/// `pool.example.org`, with the port and scheme when not the defaults and the nameserver
/// when one is given: what logs name the pool by.
impl fmt::Display for PoolSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scheme != PoolScheme::Http {
            write!(f, "{}://", self.scheme.as_str())?;
        }
        f.write_str(&self.name)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        if let Some(nameserver) = self.nameserver {
            write!(f, " via {nameserver}")?;
        }
        Ok(())
    }
}

/// What is wrong with a `peers.toml` text. Each names the 1-based line; nothing is used
/// from a file with any of them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PeersError {
    /// Not TOML, or not the expected shape (an unknown field, a wrong type).
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    /// A field has a value that is not allowed, or does not belong in this kind of entry.
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
    /// The same pool (name, scheme, port and nameserver) appears twice.
    #[error("line {line}: pool {pool} already appears on line {first_line}")]
    DuplicatePool {
        line: usize,
        first_line: usize,
        pool: String,
    },
    #[error("line {line}: more than {MAX_PEERS} peers")]
    TooMany { line: usize },
    #[error("line {line}: more than {MAX_POOLS} pools")]
    TooManyPools { line: usize },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    peer: Vec<Spanned<RawPeer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    #[serde(default)]
    url: Option<Spanned<String>>,
    #[serde(default)]
    pool: Option<Spanned<String>>,
    #[serde(default)]
    port: Option<Spanned<i64>>,
    #[serde(default)]
    scheme: Option<Spanned<String>>,
    #[serde(default)]
    nameserver: Option<Spanned<String>>,
    #[serde(default)]
    weight: Option<Spanned<f64>>,
    #[serde(default)]
    key: Option<Spanned<String>>,
}

/// Parses and validates the text of a `peers.toml`. An empty file, or one without
/// `[[peer]]` entries, is valid: the node then starts alone (or from its saved state).
pub fn parse_peers(text: &str) -> Result<PeersFile, PeersError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| match single_peer_table(text) {
        Some(line) => PeersError::Syntax {
            line,
            message: "`[peer]` is one table; write `[[peer]]` (two brackets) above each peer"
                .into(),
        },
        None => PeersError::Syntax {
            line: err.span().map_or(1, |span| line_of(text, span.start)),
            message: err.message().to_owned(),
        },
    })?;
    let mut file = PeersFile::default();
    let mut seen: HashMap<PeerUrl, usize> = HashMap::new();
    let mut seen_pools: HashMap<PoolSeed, usize> = HashMap::new();
    for spanned in raw.peer {
        let entry_line = line_of(text, spanned.span().start);
        let entry = spanned.into_inner();
        let line = match (&entry.url, &entry.pool) {
            (Some(url), _) => line_of(text, url.span().start),
            (None, Some(pool)) => line_of(text, pool.span().start),
            (None, None) => entry_line,
        };
        if file.peers.len() + file.pools.len() == MAX_PEERS {
            return Err(PeersError::TooMany { line });
        }
        match (&entry.url, &entry.pool) {
            (Some(_), Some(pool)) => {
                return Err(PeersError::Invalid {
                    line: line_of(text, pool.span().start),
                    field: "pool",
                    reason: "an entry names one node by `url` or a pool by `pool`, not both".into(),
                });
            }
            (None, None) => {
                return Err(PeersError::Syntax {
                    line,
                    message: "missing field `url` (or `pool`, for a pool's DNS name)".into(),
                });
            }
            (Some(_), None) => {
                let peer = node_entry(text, entry, line)?;
                if let Some(&first_line) = seen.get(&peer.url) {
                    return Err(PeersError::Duplicate {
                        line,
                        first_line,
                        url: peer.url.to_string(),
                    });
                }
                seen.insert(peer.url.clone(), line);
                file.peers.push(peer);
            }
            (None, Some(_)) => {
                if file.pools.len() == MAX_POOLS {
                    return Err(PeersError::TooManyPools { line });
                }
                let pool = pool_entry(text, entry, line)?;
                let key = PoolSeed {
                    line: 0,
                    ..pool.clone()
                };
                if let Some(&first_line) = seen_pools.get(&key) {
                    return Err(PeersError::DuplicatePool {
                        line,
                        first_line,
                        pool: pool.to_string(),
                    });
                }
                seen_pools.insert(key, line);
                file.pools.push(pool);
            }
        }
    }
    Ok(file)
}

fn invalid(text: &str, span: Range<usize>, field: &'static str, reason: String) -> PeersError {
    PeersError::Invalid {
        line: line_of(text, span.start),
        field,
        reason,
    }
}

/// A `url` entry: the fields of a pool are refused, so a half-edited entry is not read as
/// something else.
fn node_entry(text: &str, entry: RawPeer, line: usize) -> Result<Peer, PeersError> {
    let RawPeer {
        url,
        port,
        scheme,
        nameserver,
        weight,
        key,
        pool: _,
    } = entry;
    if let Some(port) = port {
        return Err(invalid(
            text,
            port.span(),
            "port",
            "belongs to a `pool` entry; a node's port goes into its url".into(),
        ));
    }
    if let Some(scheme) = scheme {
        return Err(invalid(
            text,
            scheme.span(),
            "scheme",
            "belongs to a `pool` entry; a node's scheme goes into its url".into(),
        ));
    }
    if let Some(nameserver) = nameserver {
        return Err(invalid(
            text,
            nameserver.span(),
            "nameserver",
            "belongs to a `pool` entry".into(),
        ));
    }
    let Some(url) = url else {
        return Err(PeersError::Syntax {
            line,
            message: "missing field `url`".into(),
        });
    };
    let parsed = PeerUrl::parse(url.get_ref())
        .map_err(|err| invalid(text, url.span(), "url", err.to_string()))?;
    let weight = match &weight {
        None => None,
        Some(w) => {
            let value = *w.get_ref();
            if !is_valid_weight(value) {
                return Err(invalid(
                    text,
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
    let key = match &key {
        None => None,
        Some(k) => {
            let key = PublicKey::from_base64(k.get_ref().trim())
                .map_err(|err| invalid(text, k.span(), "key", err.to_string()))?;
            key.verifying_key()
                .map_err(|err| invalid(text, k.span(), "key", err.to_string()))?;
            Some(key)
        }
    };
    Ok(Peer {
        url: parsed,
        weight,
        key,
        line,
    })
}

/// A `pool` entry. `weight` and `key` describe one node, and a pool's answers are whoever
/// its DNS names this minute, so neither is taken here.
fn pool_entry(text: &str, entry: RawPeer, line: usize) -> Result<PoolSeed, PeersError> {
    let RawPeer {
        pool,
        port,
        scheme,
        nameserver,
        weight,
        key,
        url: _,
    } = entry;
    if let Some(weight) = weight {
        return Err(invalid(
            text,
            weight.span(),
            "weight",
            "describes one node: name it by `url` to give it a weight".into(),
        ));
    }
    if let Some(key) = key {
        return Err(invalid(
            text,
            key.span(),
            "key",
            "pins one node: name it by `url` to pin its key".into(),
        ));
    }
    let Some(pool) = pool else {
        return Err(PeersError::Syntax {
            line,
            message: "missing field `pool`".into(),
        });
    };
    let name =
        dns_name(pool.get_ref()).map_err(|reason| invalid(text, pool.span(), "pool", reason))?;
    let scheme = match &scheme {
        None => PoolScheme::Http,
        Some(s) => match s.get_ref().trim().to_ascii_lowercase().as_str() {
            "http" => PoolScheme::Http,
            "https" => PoolScheme::Https,
            other => {
                return Err(invalid(
                    text,
                    s.span(),
                    "scheme",
                    format!("`{other}` is not allowed (http or https)"),
                ));
            }
        },
    };
    let port = match &port {
        None => scheme.default_port(),
        Some(p) => match u16::try_from(*p.get_ref()) {
            Ok(port) if port > 0 => port,
            _ => {
                return Err(invalid(
                    text,
                    p.span(),
                    "port",
                    format!("{} is not a port from 1 to 65535", p.get_ref()),
                ));
            }
        },
    };
    let nameserver = match &nameserver {
        None => None,
        Some(ns) => Some(
            nameserver_addr(ns.get_ref())
                .map_err(|reason| invalid(text, ns.span(), "nameserver", reason))?,
        ),
    };
    Ok(PoolSeed {
        name,
        scheme,
        port,
        nameserver,
        line,
    })
}

/// A DNS name as a pool's: ASCII letters, digits and hyphens in dot-separated labels of 1
/// to 63 characters, not starting or ending with a hyphen, at least two labels, at most
/// 253 characters, a trailing dot allowed; lowercased. An address is refused (it is one
/// node: a `url` entry), and so is an all-numeric last label, which no DNS name has.
pub fn dns_name(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{trimmed:?} is an address, not a name: name one node with url = \"http://{trimmed}\""
        ));
    }
    let name = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    let not_a_name = |why: &str| format!("{trimmed:?} is not a DNS name: {why}");
    if name.is_empty() {
        return Err("a DNS name is needed, like pool.badges.example.org".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(not_a_name(&format!(
            "longer than {MAX_NAME_LEN} characters"
        )));
    }
    if name.contains("://") || name.contains('/') {
        return Err(not_a_name(
            "write the name alone, without scheme or path (a node's URL goes into `url`)",
        ));
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(not_a_name(
                "an empty label (two dots in a row, or a leading dot)",
            ));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(not_a_name(&format!(
                "a label longer than {MAX_LABEL_LEN} characters"
            )));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(not_a_name(
                "only letters, digits, hyphens and dots (an international name in its xn-- form)",
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(not_a_name("a label starts or ends with a hyphen"));
        }
    }
    if labels.len() < 2 {
        return Err(not_a_name(
            "a pool's name has at least two labels, like pool.example.org",
        ));
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(not_a_name("its last label is all digits"));
    }
    Ok(name)
}

/// `IP:port`, `[IPv6]:port`, or a bare address for port 53.
fn nameserver_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        if addr.port() == 0 {
            return Err(format!("{text:?}: port 0 is not a port to ask"));
        }
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    Err(format!(
        "{text:?} is not an address like 192.0.2.53, 192.0.2.53:5353 or [2001:db8::53]:53 (a name would need a resolver to find the resolver)"
    ))
}

/// The line of a `[peer]` header, if the file has one: serde's words for it ("invalid type:
/// map, expected a sequence") name neither the mistake nor its line.
fn single_peer_table(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let code = line.split('#').next().unwrap_or_default().trim();
            code.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .is_some_and(|name| !name.starts_with('[') && name.trim() == "peer")
        })
        .map(|index| index + 1)
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
mod tests;
