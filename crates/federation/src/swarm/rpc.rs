//! The request-response protocol ([`crate::wire::SYNC_PROTOCOL`]): requests
//! this node sends and their answers (a `Busy` answer counted and turned
//! into [`FedError::Busy`]), and requests it receives, each let in by the
//! inbound gate (or answered `Busy` at once) and answered by the host off
//! the loop, pushes included.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::request_response::{self, InboundRequestId, ResponseChannel};
use spaces_protocol::NodeId;
use tokio::sync::oneshot;

use super::handle::Command;
use super::{FedError, Handle, Host, Offer, Task};
use crate::gate::Slot;
use crate::peer::{node_id, peer_id};
use crate::traffic::add;
use crate::wire::{Request, Response};

/// Timeout of one request.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// An answered request's slot is freed after this long even without
/// libp2p's report: every inbound stream ends within the request timeout,
/// so a slot still held later is bookkeeping gone wrong, not a slow peer.
pub(super) const ANSWER_LAPSE: Duration = Duration::from_secs(30);

impl<H: Host> Task<H> {
    /// Sends a request; its answer (or failure) goes to `reply`.
    pub(super) fn request(
        &mut self,
        node: NodeId,
        request: Request,
        reply: oneshot::Sender<Result<Response, FedError>>,
    ) {
        let Some(peer) = peer_id(&node) else {
            let _ = reply.send(Err(FedError::BadNode));
            return;
        };
        if self.is_blocked(&peer) {
            let _ = reply.send(Err(FedError::Blocked(node)));
            return;
        }
        add(&self.handle.traffic.requests_sent, 1);
        let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
        self.pending.insert(id, reply);
    }

    /// Writes the host's answer to an inbound request.
    pub(super) fn answered(
        &mut self,
        request_id: InboundRequestId,
        channel: ResponseChannel<Response>,
        response: Response,
        slot: Slot,
    ) {
        // Fails only if the stream has gone (the peer left, or the
        // request timed out): the slot is freed at once then.
        // Otherwise it is held until the response is written.
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_ok()
        {
            self.answering.insert(request_id, (slot, Instant::now()));
        }
    }

    pub(super) fn sync_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => {
                self.sync_message(peer, message)
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %error, "request failed");
                if let Some(reply) = self.pending.remove(&request_id) {
                    let failed = match &error {
                        request_response::OutboundFailure::Io(e)
                            if e.kind() == std::io::ErrorKind::Unsupported =>
                        {
                            FedError::Unsupported(e.to_string())
                        }
                        other => FedError::Failed(other.to_string()),
                    };
                    let _ = reply.send(Err(failed));
                }
                if matches!(error, request_response::OutboundFailure::DialFailure) {
                    // Ask the DHT where it is, for next time.
                    self.swarm.behaviour_mut().kad.get_closest_peers(peer);
                }
            }
            request_response::Event::ResponseSent { request_id, .. } => {
                self.answering.remove(&request_id);
            }
            request_response::Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.answering.remove(&request_id);
                tracing::debug!(%peer, %error, "inbound request failed");
                if let request_response::InboundFailure::Io(e) = &error
                    && e.kind() == std::io::ErrorKind::InvalidData
                {
                    self.charge(peer, "bad_frame");
                }
            }
        }
    }

    fn sync_message(
        &mut self,
        peer: PeerId,
        message: request_response::Message<Request, Response>,
    ) {
        match message {
            request_response::Message::Request {
                request_id,
                request,
                channel,
            } => {
                add(&self.handle.traffic.requests_received, 1);
                let Some(from) = node_id(&peer) else {
                    let response = Response::refused("not_a_node", "only Spaces nodes are served");
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                    return;
                };
                if let Err(why) = request.check() {
                    self.charge(peer, "bad_request");
                    let response = Response::refused("bad_request", why);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .sync
                        .send_response(channel, response);
                    return;
                }
                let slot = match self.handle.gate.enter(peer) {
                    Ok(slot) => slot,
                    Err(full) => {
                        // Answered at once, with no work done: the request
                        // is dropped here, its memory with it.
                        if full.over_share {
                            self.charge(peer, "busy");
                        }
                        let _ = self
                            .swarm
                            .behaviour_mut()
                            .sync
                            .send_response(channel, Response::busy());
                        return;
                    }
                };
                let host = self.host.clone();
                let handle = self.handle.clone();
                self.spawn_back(async move {
                    let response = match request {
                        Request::Push { events } => push(&*host, &handle, from, events).await,
                        other => host.answer(from, other).await,
                    };
                    Command::Answered {
                        request_id,
                        channel,
                        response,
                        slot,
                    }
                });
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                let result = match response {
                    Response::Busy { retry_after_ms } => {
                        // A push's busy answer too: the receiver's own sync
                        // brings the event later (pushes are not retried).
                        self.handle.gate.busy_received();
                        Err(FedError::Busy { retry_after_ms })
                    }
                    response => Ok(response),
                };
                if let Some(reply) = self.pending.remove(&request_id) {
                    let _ = reply.send(result);
                }
            }
        }
    }
}

/// Takes a push: offers its events, charges what was invalid, and fetches
/// what the events need.
async fn push<H: Host>(host: &H, handle: &Handle, from: NodeId, events: Vec<Vec<u8>>) -> Response {
    let offers = host.offer(from, events).await;
    let mut new = 0;
    for offer in offers {
        match offer {
            Offer::New => new += 1,
            Offer::Rejected(code) => handle.charge(from, code).await,
            Offer::MissingParents { room } | Offer::UnknownRoom { room, fetch: true } => {
                handle.sync_soon(room, from).await
            }
            _ => {}
        }
    }
    Response::Pushed { new }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use spaces_protocol::{EventId, NodeId, NodeKey, RoomId};

    use super::super::testing::{Empty, config, listen_addr, until};
    use super::super::{FedError, Host, Offer, start};
    use crate::peer::peer_id;
    use crate::wire::{Request, Response};

    /// A node whose answers wait until the test lets them go.
    struct Slow {
        started: AtomicU32,
        go: tokio::sync::Semaphore,
    }

    impl Host for Slow {
        async fn offer(&self, _from: NodeId, events: Vec<Vec<u8>>) -> Vec<Offer> {
            vec![Offer::Duplicate; events.len()]
        }
        async fn answer(&self, _from: NodeId, _request: Request) -> Response {
            self.started.fetch_add(1, Ordering::SeqCst);
            let _ = self.go.acquire().await;
            Response::refused("unknown_room", "nothing here")
        }
        async fn heads(&self, _room: RoomId) -> Vec<EventId> {
            Vec::new()
        }
    }

    #[tokio::test]
    async fn inbound_requests_beyond_the_bound_are_answered_busy_at_once() {
        let slow = Arc::new(Slow {
            started: AtomicU32::new(0),
            go: tokio::sync::Semaphore::new(0),
        });
        let key = NodeKey::from_seed([4; 32]);
        let (node, _task) = start(config(2), &key, slow.clone()).unwrap();
        let mut addr = listen_addr(&node).await;
        addr.push(libp2p::multiaddr::Protocol::P2p(
            peer_id(&key.node_id()).unwrap(),
        ));
        let asker_key = NodeKey::from_seed([5; 32]);
        let (asker, _asker_task) = start(config(2), &asker_key, Arc::new(Empty)).unwrap();
        asker.dial(addr).await.unwrap();
        let target = key.node_id();
        let ask = || {
            let asker = asker.clone();
            let request = Request::Events {
                room: RoomId([1; 32]),
                ids: Vec::new(),
            };
            async move { asker.request(target, request).await }
        };

        // Two requests take both slots and wait in the host.
        let first = tokio::spawn(ask());
        let second = tokio::spawn(ask());
        until("both are being answered", async || {
            slow.started.load(Ordering::SeqCst) == 2
        })
        .await;
        // A third is answered busy without reaching the host.
        assert_eq!(
            ask().await,
            Err(FedError::Busy {
                retry_after_ms: 500
            })
        );
        assert_eq!(slow.started.load(Ordering::SeqCst), 2);
        let stats = node.inbound_stats();
        assert_eq!((stats.capacity, stats.in_flight), (2, 2));
        assert_eq!((stats.busy_sent, stats.busy_charged), (1, 1));
        assert_eq!(asker.inbound_stats().busy_received, 1);
        // The asker held every slot, so the refusal cost it a little.
        let me = peer_id(&asker_key.node_id()).unwrap().to_string();
        let penalty = node
            .status()
            .await
            .unwrap()
            .peers
            .into_iter()
            .find(|p| p.peer == me)
            .unwrap()
            .penalty;
        assert!(penalty > 0.5 && penalty <= 1.0, "{penalty}");

        // Once the answers are written, the slots are free again.
        slow.go.add_permits(100);
        for answer in [first.await.unwrap(), second.await.unwrap()] {
            assert!(matches!(answer, Ok(Response::Refused { .. })), "{answer:?}");
        }
        until("the slots are freed", async || {
            node.inbound_stats().in_flight == 0
        })
        .await;
        assert!(matches!(ask().await, Ok(Response::Refused { .. })));
    }
}
