//! The pool zone's answers as a pure function: a question, the nodes this node may answer
//! with, and a random source in; the response code and records out. No socket, no clock,
//! no global randomness, so every rule is tested with a seeded generator.

use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use rand::{Rng, RngExt as _};

use crate::federation::PoolNode;
use crate::federation::address::is_forbidden_probe_target;

/// Most addresses in one answer: enough for a client to fall back three times when the
/// first node it tries is down, and few enough to fit any UDP answer with room to spare.
pub const MAX_ANSWERS: usize = 4;
/// TTL of the zone's NS and SOA records: they change only when the operators change them.
pub const DELEGATION_TTL: u32 = 3600;

/// What the zone is: its name, the TTL of its address records, its name servers.
#[derive(Clone, Debug)]
pub struct Zone {
    origin: Name,
    lower: LowerName,
    ttl: u32,
    soa: Record,
    ns: Vec<Record>,
    /// Loopback and private addresses do not count for the one-per-network rule (local
    /// clusters and tests, as for listing).
    allow_private: bool,
}

/// The answer to one question.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub code: ResponseCode,
    /// Set for every question inside the zone.
    pub authoritative: bool,
    pub answers: Vec<Record>,
    /// The SOA for negative answers (NXDOMAIN and NODATA), so resolvers cache them for the
    /// SOA's minimum TTL and no longer.
    pub authority: Vec<Record>,
    /// Indexes into the node list of the nodes whose addresses are in `answers`.
    pub chosen: Vec<usize>,
}

impl Answer {
    fn code(code: ResponseCode) -> Answer {
        Answer {
            code,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            chosen: Vec::new(),
        }
    }
}

/// Why a zone cannot be set up (a bad flag).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("--dns-zone: {0}")]
    Zone(String),
    #[error("--dns-nameservers: {0}")]
    Nameserver(String),
}

/// Parses a zone or host name as written on the command line (a trailing dot optional).
pub fn parse_name(text: &str) -> Result<Name, String> {
    let text = text.trim();
    if text.is_empty() || text == "." {
        return Err("a name is needed, like pool.badges.example.org".into());
    }
    let mut name = Name::from_ascii(text).map_err(|e| format!("{text:?}: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

impl Zone {
    /// A zone named `origin` whose address records live `ttl` seconds, served by the
    /// `nameservers` (the SOA names the first as primary; none: the zone's own name).
    pub fn new(
        origin: &str,
        ttl: u32,
        nameservers: &[String],
        serial: u32,
        allow_private: bool,
    ) -> Result<Zone, ZoneError> {
        let origin = parse_name(origin).map_err(ZoneError::Zone)?;
        let ns_names = nameservers
            .iter()
            .map(|n| parse_name(n))
            .collect::<Result<Vec<Name>, String>>()
            .map_err(ZoneError::Nameserver)?;
        let mname = ns_names.first().cloned().unwrap_or_else(|| origin.clone());
        let rname = origin
            .prepend_label("hostmaster")
            .map_err(|e| ZoneError::Zone(e.to_string()))?;
        // Refresh, retry and expire only matter to secondaries, which this zone has none
        // of (every node computes it); minimum is the negative-caching TTL.
        let soa = Record::from_rdata(
            origin.clone(),
            DELEGATION_TTL.min(ttl.max(1)),
            RData::SOA(SOA::new(mname, rname, serial, 3600, 600, 86_400, ttl)),
        );
        let ns = ns_names
            .into_iter()
            .map(|n| Record::from_rdata(origin.clone(), DELEGATION_TTL, RData::NS(NS(n))))
            .collect();
        Ok(Zone {
            lower: LowerName::new(&origin),
            origin,
            ttl,
            soa,
            ns,
            allow_private,
        })
    }

    pub fn origin(&self) -> &Name {
        &self.origin
    }

    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Answers one question. `nodes` are those this node may answer with (its own probes
    /// decided: [`crate::federation::Core::pool_nodes`]).
    pub fn answer<R: Rng + ?Sized>(
        &self,
        name: &LowerName,
        original: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        nodes: &[PoolNode],
        rng: &mut R,
    ) -> Answer {
        if qclass != DNSClass::IN || !self.lower.zone_of(name) {
            // Not ours: an authoritative-only server answers nothing it is not the
            // authority for, and never recurses.
            return Answer::code(ResponseCode::Refused);
        }
        if qtype == RecordType::ANY {
            // ANY answers are the classic amplification vector; the zone has nothing a
            // client needs ANY for.
            return Answer {
                authoritative: true,
                ..Answer::code(ResponseCode::NotImp)
            };
        }
        let mut answer = Answer {
            authoritative: true,
            ..Answer::code(ResponseCode::NoError)
        };
        if *name != self.lower {
            answer.code = ResponseCode::NXDomain;
            answer.authority.push(self.soa.clone());
            return answer;
        }
        match qtype {
            RecordType::A | RecordType::AAAA => {
                for (index, ip) in choose(nodes, qtype == RecordType::AAAA, self.allow_private, rng)
                {
                    let data = match ip {
                        IpAddr::V4(v4) => RData::A(A(v4)),
                        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                    };
                    answer
                        .answers
                        .push(Record::from_rdata(original.clone(), self.ttl, data));
                    answer.chosen.push(index);
                }
            }
            RecordType::SOA => answer.answers.push(self.soa.clone()),
            RecordType::NS => answer.answers.extend(self.ns.iter().cloned()),
            _ => {}
        }
        if answer.answers.is_empty() {
            answer.authority.push(self.soa.clone());
        }
        answer
    }
}

/// Up to [`MAX_ANSWERS`] addresses of one family, of distinct nodes, drawn at random with
/// probability in proportion to weight (Efraimidis–Spirakis sampling without
/// replacement), at most one per IPv4 /24 or IPv6 /48 so that one operator's rack cannot
/// fill an answer; loopback and private addresses are exempt with `allow_private`.
pub fn choose<R: Rng + ?Sized>(
    nodes: &[PoolNode],
    v6: bool,
    allow_private: bool,
    rng: &mut R,
) -> Vec<(usize, IpAddr)> {
    let mut drawn: Vec<(f64, usize, IpAddr)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(index, node)| {
            let of_family: Vec<IpAddr> = node
                .addresses
                .iter()
                .copied()
                .filter(|ip| ip.is_ipv6() == v6)
                .collect();
            if of_family.is_empty() || node.weight.is_nan() || node.weight <= 0.0 {
                return None;
            }
            let ip = of_family[rng.random_range(0..of_family.len())];
            // -ln(u) / w is exponential with rate w: the smallest keys are a weighted
            // sample. u in (0, 1] keeps the logarithm finite.
            let u: f64 = 1.0 - rng.random::<f64>();
            Some((-u.ln() / node.weight, index, ip))
        })
        .collect();
    drawn.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut networks: Vec<IpAddr> = Vec::with_capacity(MAX_ANSWERS);
    let mut out = Vec::with_capacity(MAX_ANSWERS);
    for (_, index, ip) in drawn {
        if out.len() == MAX_ANSWERS {
            break;
        }
        if !(allow_private && is_forbidden_probe_target(ip)) {
            let network = network_of(ip);
            if networks.contains(&network) {
                continue;
            }
            networks.push(network);
        }
        out.push((index, ip));
    }
    out
}

/// The network one answer holds at most one address of: the /24 for IPv4, the /48 (one
/// site) for IPv6.
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            IpAddr::from([a, b, c, 0])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::from([s[0], s[1], s[2], 0, 0, 0, 0, 0])
        }
    }
}

#[cfg(test)]
mod tests;
