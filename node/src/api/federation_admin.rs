//! Operator endpoints for federation: what the node is connected to and how
//! it scores its peers, dialing a peer, and blocking a node (defederation).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_federation::{FedError, Multiaddr};
use spaces_protocol::NodeId;

use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, Authed};

fn admin(authed: &Authed) -> ApiResult<()> {
    if authed.admin {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "not_admin",
            "only node admins manage federation",
        ))
    }
}

fn unavailable(e: FedError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        e.to_string(),
    )
}

/// This node's peer id, listen addresses (each with `/p2p/<peer id>`, ready
/// to give another node as a bootstrap address) and peers with their scores.
pub async fn status(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    admin(&authed)?;
    let status = state
        .federation
        .handle
        .status()
        .await
        .map_err(unavailable)?;
    let addresses: Vec<String> = status
        .listen
        .iter()
        .map(|a| format!("{a}/p2p/{}", status.peer))
        .collect();
    Ok(Json(json!({
        "node_id": status.node.to_string(),
        "peer_id": status.peer,
        "addresses": addresses,
        "rooms": status.rooms,
        "topics": status.topics,
        "peers": status.peers.iter().map(|p| json!({
            "node_id": p.node.map(|n| n.to_string()),
            "peer_id": p.peer,
            "connected": p.connected,
            "connections": p.connections,
            "gossip_score": p.gossip_score,
            "penalty": p.penalty,
            "rejected": p.rejected,
            "banned": p.banned,
            "blocked": p.blocked,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dial {
    /// A multiaddr, with `/p2p/<peer id>` to also remember the peer.
    addr: String,
}

pub async fn dial(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<Dial>,
) -> ApiResult<StatusCode> {
    admin(&authed)?;
    let addr: Multiaddr = req
        .addr
        .parse()
        .map_err(|e| ApiError::bad_request("bad_value", format!("addr: {e}")))?;
    state
        .federation
        .handle
        .dial(addr)
        .await
        .map_err(|e| ApiError::bad_request("dial_failed", e.to_string()))?;
    Ok(StatusCode::ACCEPTED)
}

fn parse_node(text: &str) -> ApiResult<NodeId> {
    text.parse()
        .map_err(|e| ApiError::bad_request("bad_value", format!("node id {text:?}: {e}")))
}

/// Blocks a node: its connections are closed and refused, nothing is sent
/// to it or taken from it, until unblocked (not kept across restarts: use
/// `p2p.blocked` in the config for that).
pub async fn block(
    State(state): State<AppState>,
    authed: Authed,
    Path(node): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&authed)?;
    let node = parse_node(&node)?;
    if node == state.engine.node_id() {
        return Err(ApiError::bad_request(
            "bad_value",
            "a node cannot block itself",
        ));
    }
    let handle = &state.federation.handle;
    handle.block(node, true).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unblock(
    State(state): State<AppState>,
    authed: Authed,
    Path(node): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&authed)?;
    let node = parse_node(&node)?;
    let handle = &state.federation.handle;
    handle.block(node, false).await.map_err(unavailable)?;
    Ok(StatusCode::NO_CONTENT)
}
