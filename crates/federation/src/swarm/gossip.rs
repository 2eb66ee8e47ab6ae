//! Gossip: a public room is a gossipsub topic. Publishing this node's
//! events (by gossip, and by push where gossip does not reach), following
//! which rooms travel how, and validating what gossip brings before it is
//! forwarded (with events from the future held until their time).

use std::cmp::Reverse;
use std::collections::HashSet;

use libp2p::PeerId;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::kad;
use spaces_protocol::{NodeId, RoomId};

use super::handle::Command;
use super::{Host, Offer, Route, Task};
use crate::peer::{node_id, peer_id};
use crate::traffic::add;
use crate::wire::{self, Request};

/// Most gossip messages being validated at once; more are dropped
/// (ignored, not forwarded), which bounds memory under a flood.
const MAX_VALIDATING: usize = 512;
/// Most events waiting for their clock to come.
const MAX_DEFERRED: usize = 1024;

impl<H: Host> Task<H> {
    pub(super) fn publish(&mut self, room: RoomId, bytes: Vec<u8>, route: Route) {
        let mut push_to: Vec<NodeId> = route.nodes.clone();
        if route.public {
            let topic = wire::room_topic(&room);
            let hash = topic.hash();
            // Nodes already subscribed get it by gossip.
            let subscribed: HashSet<NodeId> = self
                .swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .filter(|(_, topics)| topics.contains(&&hash))
                .filter_map(|(peer, _)| node_id(peer))
                .collect();
            match self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(topic, bytes.clone())
            {
                Ok(_) => {
                    add(&self.handle.traffic.gossip_published, 1);
                    push_to.retain(|n| !subscribed.contains(n));
                }
                Err(e) => {
                    add(&self.handle.traffic.gossip_publish_failed, 1);
                    tracing::debug!(%room, error = %e, "gossip publish failed; pushing");
                }
            }
        }
        for node in push_to {
            if node == self.handle.node {
                continue;
            }
            let Some(peer) = peer_id(&node) else { continue };
            if self.is_blocked(&peer) {
                continue;
            }
            let request = Request::Push {
                events: vec![bytes.clone()],
            };
            // Fire and forget: a node that misses it catches up by sync.
            add(&self.handle.traffic.pushes_sent, 1);
            self.swarm.behaviour_mut().sync.send_request(&peer, request);
        }
    }

    pub(super) fn set_room(&mut self, room: RoomId, route: Option<Route>) {
        let topic = wire::room_topic(&room);
        let key = kad::RecordKey::new(&room.0);
        let behaviour = self.swarm.behaviour_mut();
        match &route {
            Some(r) if r.public => {
                if let Err(e) = behaviour.gossipsub.subscribe(&topic) {
                    tracing::warn!(%room, error = %e, "subscribe failed");
                }
                self.topics.insert(topic.hash(), room);
                if !self.rooms.get(&room).is_some_and(|r| r.public) {
                    // Announce it so nodes joining later can find us.
                    let _ = behaviour.kad.start_providing(key);
                }
            }
            _ => {
                behaviour.gossipsub.unsubscribe(&topic);
                self.topics.remove(&topic.hash());
                behaviour.kad.stop_providing(&key);
            }
        }
        match route {
            Some(route) => {
                let new_nodes: Vec<NodeId> = match self.rooms.get(&room) {
                    Some(old) => route
                        .nodes
                        .iter()
                        .filter(|n| !old.nodes.contains(n))
                        .copied()
                        .collect(),
                    None => route.nodes.clone(),
                };
                self.rooms.insert(room, route);
                // Catch up with nodes newly in the room that we can reach.
                for node in new_nodes {
                    if peer_id(&node).is_some_and(|p| self.swarm.is_connected(&p)) {
                        self.sync(room, node);
                    }
                }
            }
            None => {
                self.rooms.remove(&room);
            }
        }
    }

    pub(super) fn validated(
        &mut self,
        id: MessageId,
        source: PeerId,
        bytes: Vec<u8>,
        offer: Offer,
    ) {
        let from = node_id(&source);
        let acceptance = match offer {
            Offer::New => MessageAcceptance::Accept,
            Offer::Rejected(code) => {
                self.charge(source, code);
                MessageAcceptance::Reject
            }
            Offer::MissingParents { room } | Offer::UnknownRoom { room, fetch: true } => {
                if let Some(from) = from {
                    self.sync(room, from);
                }
                MessageAcceptance::Ignore
            }
            Offer::Deferred { until_ms } => {
                if let Some(from) = from
                    && self.deferred.len() < MAX_DEFERRED
                {
                    self.deferred.push(Reverse((until_ms, from, bytes)));
                }
                MessageAcceptance::Ignore
            }
            Offer::Duplicate | Offer::UnknownRoom { .. } | Offer::Unavailable => {
                MessageAcceptance::Ignore
            }
        };
        self.report(&id, &source, acceptance);
    }

    pub(super) fn gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(from) = node_id(&propagation_source) else {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
                    return;
                };
                if !self.topics.contains_key(&message.topic) || self.validating >= MAX_VALIDATING {
                    self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                }
                self.validating += 1;
                let host = self.host.clone();
                self.spawn_back(async move {
                    let bytes = message.data;
                    let offer = host
                        .offer(from, vec![bytes.clone()])
                        .await
                        .pop()
                        .unwrap_or(Offer::Unavailable);
                    Command::Validated {
                        id: message_id,
                        source: propagation_source,
                        bytes,
                        offer,
                    }
                });
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                // A node newly on a room's topic may hold what we lack.
                if let (Some(room), Some(node)) = (self.topics.get(&topic), node_id(&peer_id)) {
                    self.sync(*room, node);
                }
            }
            _ => {}
        }
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        let traffic = &self.handle.traffic;
        add(
            match acceptance {
                MessageAcceptance::Accept => &traffic.gossip_accepted,
                MessageAcceptance::Reject => &traffic.gossip_rejected,
                MessageAcceptance::Ignore => &traffic.gossip_ignored,
            },
            1,
        );
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, acceptance);
    }
}
