//! `POST /fill`: another node asking this one for its copy of a resource. The request is
//! checked by [`crate::fill::Owner::admit`]; the answer comes from this node's own cache,
//! which on a miss asks Docker Hub within the share of the network the request came from (as
//! a client's request from there would be) and never a third node. Every refusal is a
//! [`FillRefusal`], answered through [`crate::http::error`].

use std::net::IpAddr;

use hyper::Response;
use serde_json::value::RawValue;

use super::network::read_body;
use crate::cache::{Resource, ResourceCache};
use crate::fill::FillRefusal;
use crate::fill::wire::{FillOutcome, FillRequest, MAX_FILL_REQUEST_BYTES};
use crate::http::error::error_response;
use crate::http::response::{Body, typed};
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
    let (request, _slot) = match node.fills().owner().admit(&bytes, peer) {
        Ok(admitted) => admitted,
        Err(refusal) => return error_response(&refusal),
    };
    let docker = node.docker();
    // Every fill from one network shares that network's share, whichever nodes it holds.
    let asker = ClientKey::of(peer);
    let served = match request.resource.as_str() {
        "status" => serve(node, node.cache(), &request, asker).await,
        "repository" => serve(node, &docker.repository, &request, asker).await,
        "tag_list" => serve(node, &docker.tag_list, &request, asker).await,
        "tag" => serve(node, &docker.tag, &request, asker).await,
        _ => Err(FillRefusal::NoSuchResource),
    };
    served.unwrap_or_else(|refusal| {
        node.fills().owner().not_served(&refusal);
        error_response(&refusal)
    })
}

/// Answers `request` from `cache`, charging a miss to the asking network's share.
async fn serve<U: Resource>(
    node: &Node,
    cache: &ResourceCache<U>,
    request: &FillRequest,
    asker: ClientKey,
) -> Result<Response<Body>, FillRefusal> {
    let key = U::parse_key(&request.key).ok_or(FillRefusal::NotAName)?;
    let lookup = cache.get_local(&key, Some(asker)).await;
    let (outcome, value) = match &lookup.result {
        Ok(value) => {
            let raw = RawValue::from_string(U::write_value(value))
                .map_err(|_| FillRefusal::Unwritable)?;
            (FillOutcome::Found, Some(raw))
        }
        Err(HubError::NotFound) => (FillOutcome::NotFound, None),
        Err(HubError::RepositoryNotFound) => (FillOutcome::RepositoryNotFound, None),
        Err(err) => return Err(FillRefusal::of_lookup(err)),
    };
    let answer = node
        .fills()
        .owner()
        .answer(request, lookup.age, outcome, value);
    Ok(typed(
        serde_json::to_vec(&answer).unwrap_or_default(),
        "application/json",
        "no-store",
    ))
}
