//! `POST /fill`: another node asking this one for its copy of a resource. The request is
//! checked by [`crate::fill::Fills::admit`]; the answer comes from this node's own
//! cache, which on a miss asks Docker Hub within the share of the network the request came
//! from (as a client's request from there would be) and never a third node.

use std::net::IpAddr;

use hyper::{Response, StatusCode};
use serde_json::value::RawValue;

use super::network::read_body;
use crate::cache::{Resource, ResourceCache};
use crate::fill::wire::{FillOutcome, FillRequest, MAX_FILL_REQUEST_BYTES};
use crate::http::response::{Body, api_error, set_retry_after, typed};
use crate::hub::{ClientKey, HubError};
use crate::node::Node;

pub(super) async fn fill<B>(node: &Node, body: B, peer: IpAddr) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = match read_body(body, MAX_FILL_REQUEST_BYTES, "fill").await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let fills = node.fills();
    let (request, _slot) = match fills.admit(&bytes, peer) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let status =
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let mut response = api_error(status, &refusal.to_string());
            if let crate::fill::FillRefusal::RateLimited(retry) = &refusal {
                set_retry_after(&mut response, *retry);
            }
            return response;
        }
    };
    let docker = node.docker();
    // Every fill from one network shares that network's share, whichever nodes it holds.
    let asker = ClientKey::of(peer);
    match request.resource.as_str() {
        "status" => serve(node, node.cache(), &request, asker).await,
        "repository" => serve(node, &docker.repository, &request, asker).await,
        "tag_list" => serve(node, &docker.tag_list, &request, asker).await,
        "tag" => serve(node, &docker.tag, &request, asker).await,
        _ => {
            node.metrics().fill("served", "malformed");
            api_error(StatusCode::BAD_REQUEST, "no such resource")
        }
    }
}

/// Answers `request` from `cache`, charging a miss to the asking network's share.
async fn serve<U: Resource>(
    node: &Node,
    cache: &ResourceCache<U>,
    request: &FillRequest,
    asker: ClientKey,
) -> Response<Body> {
    let Some(key) = U::parse_key(&request.key) else {
        node.metrics().fill("served", "malformed");
        return api_error(StatusCode::BAD_REQUEST, "not a valid Docker Hub name");
    };
    let lookup = cache.get_local(&key, Some(asker)).await;
    let (outcome, value) = match &lookup.result {
        Ok(value) => match RawValue::from_string(U::write_value(value)) {
            Ok(raw) => (FillOutcome::Found, Some(raw)),
            Err(_) => {
                node.fills().unavailable();
                return api_error(StatusCode::INTERNAL_SERVER_ERROR, "cannot write the answer");
            }
        },
        Err(HubError::NotFound) => (FillOutcome::NotFound, None),
        Err(HubError::RepositoryNotFound) => (FillOutcome::RepositoryNotFound, None),
        // The asking network's share is spent: it is told when to come back, as a client
        // would be.
        Err(err @ HubError::ClientShare { .. }) => {
            node.fills().share_spent();
            let mut response = api_error(StatusCode::TOO_MANY_REQUESTS, &err.to_string());
            super::status::retry_after(&mut response, err);
            return response;
        }
        Err(err) => {
            // Nothing cached and the hub refused or failed: the asker goes on.
            node.fills().unavailable();
            let mut response = api_error(StatusCode::SERVICE_UNAVAILABLE, &err.to_string());
            super::status::retry_after(&mut response, err);
            return response;
        }
    };
    let answer = node.fills().answer(request, lookup.age, outcome, value);
    typed(
        serde_json::to_vec(&answer).unwrap_or_default(),
        "application/json",
        "no-store",
    )
}
