//! The hickory glue: a [`RequestHandler`] that answers from the live pool view through the
//! pure [`Zone`], after the per-network rate limit, and counts what it did.

use std::sync::Arc;

use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::RecordType;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use parking_lot::{Mutex, RwLock};
use prometheus::IntCounter;

use super::ratelimit::{ResponseLimiter, Verdict};
use super::zone::Zone;
use crate::federation::PoolNode;
use crate::metrics::Metrics;
use crate::tools::clock;

/// The largest UDP answer this server sends whatever the client offers: the size the DNS
/// flag day of 2020 settled on, below which no path fragments.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// The nodes the zone answers with, as of the last refresh, with each node's series of
/// `dbs_dns_answers_total` looked up once per refresh rather than once per answer.
#[derive(Debug, Default)]
pub struct PoolView {
    pub nodes: Vec<PoolNode>,
    counters: Vec<IntCounter>,
}

impl PoolView {
    pub fn new(nodes: Vec<PoolNode>, metrics: &Metrics) -> PoolView {
        let counters = nodes
            .iter()
            .map(|node| metrics.dns_answer_counter(&node.url))
            .collect();
        PoolView { nodes, counters }
    }
}

/// Answers the pool zone. Shared (cloned) by hickory's UDP task and this module's own TCP
/// connections.
#[derive(Debug, Clone)]
pub struct PoolHandler {
    zone: Arc<Zone>,
    view: Arc<RwLock<Arc<PoolView>>>,
    limiter: Arc<Mutex<ResponseLimiter>>,
    metrics: Metrics,
}

impl PoolHandler {
    pub fn new(
        zone: Zone,
        view: Arc<RwLock<Arc<PoolView>>>,
        limiter: ResponseLimiter,
        metrics: Metrics,
    ) -> PoolHandler {
        PoolHandler {
            zone: Arc::new(zone),
            view,
            limiter: Arc::new(Mutex::new(limiter)),
            metrics,
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for PoolHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // hickory has already answered what it could not parse with a bare FORMERR header
        // (never larger than the query) and dropped responses posing as queries.
        if request.protocol() == Protocol::Udp {
            // TCP needs a handshake, so its source is real and it reflects nothing; its
            // queries are limited where its connections are accepted (`super::tcp`).
            let verdict = self.limiter.lock().check(request.src().ip(), clock::now());
            match verdict {
                Verdict::Answer => {}
                Verdict::Drop => {
                    self.metrics.dns_rate_limited("dropped");
                    return not_sent(&request.metadata);
                }
                Verdict::Slip => {
                    self.metrics.dns_rate_limited("slipped");
                    let mut metadata = Metadata::response_from_request(&request.metadata);
                    metadata.truncation = true;
                    let response = MessageResponseBuilder::new(&request.queries, None)
                        .build_no_records(metadata);
                    return match response_handle.send_response(response).await {
                        Ok(info) => info,
                        Err(_) => not_sent(&request.metadata),
                    };
                }
            }
        }

        let mut edns = None;
        let mut response_edns = Edns::new();
        if let Some(asked) = &request.edns {
            response_edns.set_max_payload(asked.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            response_edns.set_version(0);
            edns = Some(&response_edns);
            if asked.version() > 0 {
                return self
                    .error(request, ResponseCode::BADVERS, edns, response_handle)
                    .await;
            }
        }
        if request.metadata.op_code != OpCode::Query {
            return self
                .error(request, ResponseCode::NotImp, edns, response_handle)
                .await;
        }
        let [query] = request.queries.queries() else {
            // None or several questions: RFC 9619 allows exactly one.
            return self
                .error(request, ResponseCode::FormErr, edns, response_handle)
                .await;
        };
        let view = Arc::clone(&self.view.read());
        let answer = self.zone.answer(
            query.name(),
            query.original().name(),
            query.query_type(),
            query.query_class(),
            &view.nodes,
            &mut rand::rng(),
        );
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.code;
        let response = MessageResponseBuilder::new(&request.queries, edns).build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty(),
            std::iter::empty(),
        );
        let info = match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(err) => {
                tracing::debug!(src = %request.src(), error = %err, "DNS answer not sent");
                return not_sent(&request.metadata);
            }
        };
        self.metrics.dns_query(
            qtype_label(query.query_type()),
            rcode_label(info.response_code),
        );
        // A truncated answer carries what fitted; count only the nodes in it.
        let sent = usize::from(info.counts().answers);
        for index in answer.chosen.iter().take(sent) {
            if let Some(counter) = view.counters.get(*index) {
                counter.inc();
            }
        }
        info
    }
}

impl PoolHandler {
    async fn error<R: ResponseHandler>(
        &self,
        request: &Request,
        code: ResponseCode,
        edns: Option<&Edns>,
        mut response_handle: R,
    ) -> ResponseInfo {
        let qtype = match request.queries.queries() {
            [query] => qtype_label(query.query_type()),
            _ => "other",
        };
        let response =
            MessageResponseBuilder::new(&request.queries, edns).error_msg(&request.metadata, code);
        match response_handle.send_response(response).await {
            Ok(info) => {
                self.metrics.dns_query(qtype, rcode_label(code));
                info
            }
            Err(_) => not_sent(&request.metadata),
        }
    }
}

/// What hickory is told when nothing was sent (it only logs it).
fn not_sent(request: &Metadata) -> ResponseInfo {
    let mut metadata = Metadata::new(request.id, MessageType::Response, request.op_code);
    metadata.response_code = ResponseCode::Refused;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// The `qtype` label: the types the zone answers, the one it refuses, and the rest as one,
/// so no query can add a series.
pub fn qtype_label(qtype: RecordType) -> &'static str {
    match qtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::SOA => "SOA",
        RecordType::NS => "NS",
        RecordType::ANY => "ANY",
        _ => "other",
    }
}

/// The `rcode` label, from the fixed set this server sends.
pub fn rcode_label(code: ResponseCode) -> &'static str {
    match code {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::BADVERS => "BADVERS",
        _ => "SERVFAIL",
    }
}
