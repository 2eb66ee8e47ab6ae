//! Moderation: the node's seam to `spaces-moderation`.
//!
//! [`Moderation::start`] looks for ONNX Runtime where the config says (one
//! place: `moderation.onnxruntime_path`, else `ORT_DYLIB_PATH`, else the
//! install script's place beside the binary), loads it and starts the
//! inference threads. When the library is missing the node goes on without
//! moderation: [`Moderation::status`] says `unavailable` and where it looked
//! (the API shows it in `/healthz` and to admins), and scoring answers
//! [`ModerationError::Unavailable`]. Inference runs on the moderation
//! crate's own threads behind a bounded queue, never on a tokio worker.
//!
//! Room policies (`Content::ModerationPolicy`, room state) say per label
//! what to do when a score reaches a threshold. The node applies them in
//! two places: a local user's message is vetted before it is signed
//! ([`Moderation::vet_local`]: `Block` refuses it), and a message received
//! from another node is screened before the engine admits it
//! ([`Moderation::screen_received`]: `Hide` and `Flag` leave a
//! [`ModerationMark`] in the store's `moderation` tree, written before the
//! event can reach any subscriber). Marks are node-local; the event stays in
//! the room's history. They are read into memory at start, and every change
//! is written through (`on_disk`) before it counts. When the classifier is
//! unavailable or busy, messages pass unscored (fail open: moderation is an
//! aid, and chat must not stop with it); the log says so.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use spaces_moderation::{Label, Moderator, Runtime, Scores, Thresholds};
use spaces_protocol::content::{ModerationPolicy, PolicyAction};
use spaces_protocol::{EventId, RoomId, UserId};
use spaces_store::{ModerationMark, Store};

use crate::services::{automod, on_disk};

/// The node's moderation service: a cheap-to-clone handle.
#[derive(Clone, Debug)]
pub struct Moderation(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    state: State,
    thresholds: Thresholds,
    moderators: HashSet<String>,
    threads: usize,
    store: Store,
    /// Every mark in the store, by event id: read at start, written through.
    marks: Mutex<HashMap<EventId, ModerationMark>>,
    /// Rooms' AutoMod rules, compiled once per version.
    automod: Mutex<HashMap<RoomId, Arc<automod::Compiled>>>,
}

/// Mentions in a message for AutoMod's limit: users, roles, and `@room`.
pub fn n_mentions(mentions: &spaces_protocol::content::Mentions) -> usize {
    mentions.users.len() + mentions.roles.len() + usize::from(mentions.room)
}

/// Reporters kept per message: enough to see that many object, bounded so
/// a message's mark stays small.
pub const MAX_REPORTERS: usize = 64;

/// A local message the room's policy refuses.
#[derive(Clone, Debug, PartialEq)]
pub struct Blocked {
    /// The labels that reached a `Block` rule's threshold.
    pub labels: Vec<String>,
}

/// What a policy makes of scores: the strongest action whose rule's
/// threshold was reached, and the labels that reached that action's rules.
/// Labels this node's classifier does not know are ignored.
pub fn apply_policy(policy: &ModerationPolicy, scores: &Scores) -> (PolicyAction, Vec<String>) {
    let mut action = PolicyAction::Allow;
    let mut labels: Vec<String> = Vec::new();
    for rule in &policy.rules {
        let Some(label) = Label::from_name(&rule.label) else {
            continue;
        };
        // Thousandths, compared as integers so that 0.8 and 800 agree.
        let reached =
            (f64::from(scores.get(label)) * 1000.0).round() >= f64::from(rule.threshold_milli);
        if !reached || rule.action == PolicyAction::Allow {
            continue;
        }
        if rule.action > action {
            action = rule.action;
            labels.clear();
        }
        if rule.action == action {
            labels.push(rule.label.clone());
        }
    }
    (action, labels)
}

#[derive(Debug)]
enum State {
    Off,
    Unavailable {
        looked: Vec<(PathBuf, String)>,
    },
    Ready {
        moderator: Moderator,
        library: PathBuf,
    },
}

/// What [`Moderation::resolve`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolved {
    Cleared,
    /// Not in the queue: no mark.
    NotQueued,
    /// Hidden and not revealed: left queued.
    StillHidden,
}

/// What operators see of moderation.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    /// `ready`, `unavailable` or `off`.
    pub state: &'static str,
    /// The library in use, when ready.
    pub library: Option<PathBuf>,
    /// Where the library was looked for and why each place failed, when
    /// unavailable.
    pub looked: Vec<(PathBuf, String)>,
    pub thresholds: Thresholds,
    pub threads: usize,
}

/// A message's scores under the node's default thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub scores: Scores,
    /// Labels whose score reached its threshold.
    pub labels: Vec<Label>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("moderation is turned off on this node")]
    Off,
    #[error("moderation is unavailable: ONNX Runtime was not found")]
    Unavailable,
    #[error("moderation is busy")]
    Busy,
    #[error("moderation failed: {0}")]
    Failed(String),
}

/// Where to look for the library, in order: the config's path, else
/// `ORT_DYLIB_PATH`, else beside the binary. One source only: a path the
/// operator named and got wrong is reported, not papered over.
pub fn candidates(config: &ModerationConfig, env: Option<PathBuf>, exe: &Path) -> Vec<PathBuf> {
    if let Some(path) = &config.onnxruntime_path {
        return vec![path.clone()];
    }
    if let Some(path) = env.filter(|p| !p.as_os_str().is_empty()) {
        return vec![path];
    }
    spaces_moderation::default_library_path(exe)
        .into_iter()
        .collect()
}

impl Moderation {
    /// Loads ONNX Runtime and starts the inference threads. Blocking (it
    /// opens a shared library and builds sessions): call it off the async
    /// runtime. Never fails: a missing library is a state, not an error.
    pub fn start(config: &ModerationConfig, store: Store) -> anyhow::Result<Moderation> {
        let state = if !config.enabled {
            State::Off
        } else {
            let exe = std::env::current_exe().unwrap_or_default();
            let env = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from);
            let paths = candidates(config, env, &exe);
            match Runtime::load(&paths) {
                Err(not_found) => {
                    tracing::warn!(
                        looked = %not_found,
                        "moderation unavailable: ONNX Runtime not found; the node serves chat without it \
                         (scripts/install-onnxruntime.sh, or set moderation.onnxruntime_path)"
                    );
                    State::Unavailable {
                        looked: not_found.looked,
                    }
                }
                Ok(runtime) => {
                    let options = spaces_moderation::Options {
                        threads: config.threads,
                        ..Default::default()
                    };
                    match Moderator::start(&runtime, &options) {
                        Ok(moderator) => State::Ready {
                            moderator,
                            library: runtime.path().to_owned(),
                        },
                        Err(e) => {
                            tracing::warn!(error = %e, "moderation unavailable: the model did not load");
                            State::Unavailable {
                                looked: vec![(runtime.path().to_owned(), e.to_string())],
                            }
                        }
                    }
                }
            }
        };
        let marks = store
            .moderation_marks()?
            .into_iter()
            .map(|(id, mark)| (EventId(id), mark))
            .collect();
        Ok(Moderation(Arc::new(Inner {
            state,
            thresholds: config.thresholds.thresholds(),
            // Usernames are case-insensitive.
            moderators: config.moderators.iter().map(|u| u.to_lowercase()).collect(),
            threads: config.threads,
            store,
            marks: Mutex::new(marks),
            automod: Mutex::default(),
        })))
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, ModerationMark>> {
        self.0.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scores `text` for a policy; `None` when there is no verdict to act
    /// on (no classifier, a busy queue: fail open, logged).
    async fn scores_for(&self, text: &str) -> Option<Scores> {
        match self.score(text).await {
            Ok(verdict) => Some(verdict.scores),
            Err(ModerationError::Off) => None,
            Err(e) => {
                tracing::debug!(error = %e, "message passes unscored");
                None
            }
        }
    }

    /// The AutoMod rule `text` (with `n_mentions` mentions) breaks in
    /// `room_id` under `rules`, compiled once per version; `None` when it
    /// passes, or when moderation is off on this node (`moderation.enabled`:
    /// the node enforces nothing).
    pub fn automod(
        &self,
        room_id: RoomId,
        rules: &Arc<spaces_protocol::content::AutoMod>,
        text: &str,
        n_mentions: usize,
    ) -> Option<String> {
        if matches!(self.0.state, State::Off) {
            return None;
        }
        let cached = self
            .0
            .automod
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&room_id)
            .filter(|c| Arc::ptr_eq(&c.rules, rules))
            .cloned();
        let compiled = match cached {
            Some(compiled) => compiled,
            None => {
                let compiled = Arc::new(automod::Compiled::compile(rules.clone()));
                self.0
                    .automod
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(room_id, compiled.clone());
                compiled
            }
        };
        compiled.check(text, n_mentions)
    }

    /// Vets a local user's message against the room's policy, before it is
    /// signed: `Err` when a `Block` rule's threshold is reached.
    pub async fn vet_local(
        &self,
        policy: Option<&ModerationPolicy>,
        text: &str,
    ) -> Result<(), Blocked> {
        let Some(policy) =
            policy.filter(|p| p.rules.iter().any(|r| r.action == PolicyAction::Block))
        else {
            return Ok(());
        };
        let Some(scores) = self.scores_for(text).await else {
            return Ok(());
        };
        match apply_policy(policy, &scores) {
            (PolicyAction::Block, labels) => Err(Blocked { labels }),
            _ => Ok(()),
        }
    }

    /// Screens a message received from another node, before the engine
    /// admits it: by the room's policy it is hidden or flagged (a durable
    /// mark) or passed. `Block` acts as `Hide` here: the sender's node
    /// should have refused it, and this node cannot unsend it.
    pub async fn screen_received(
        &self,
        room_id: RoomId,
        event_id: EventId,
        policy: &ModerationPolicy,
        text: &str,
        now_ms: u64,
    ) -> Result<Option<ModerationMark>, spaces_store::Error> {
        if self.marks().contains_key(&event_id) {
            return Ok(None);
        }
        let Some(scores) = self.scores_for(text).await else {
            return Ok(None);
        };
        let (action, labels) = apply_policy(policy, &scores);
        if action == PolicyAction::Allow {
            return Ok(None);
        }
        let mark = ModerationMark {
            room_id: room_id.0,
            hidden: action >= PolicyAction::Hide,
            labels,
            at_ms: now_ms,
            revealed_by: None,
            reported_by: Vec::new(),
        };
        let stored = mark.clone();
        on_disk(&self.0.store, move |store| {
            store.put_moderation_mark(&event_id.0, &stored)
        })
        .await?;
        tracing::info!(room = %room_id, event = %event_id, hidden = mark.hidden, labels = ?mark.labels, "received message marked by the room's moderation policy");
        self.marks().insert(event_id, mark.clone());
        Ok(Some(mark))
    }

    /// Hides `event_ids` (events of `room_id`) for this node's users with
    /// the mark's labels `labels` (a ban list's), but those already hidden
    /// or that a moderator revealed: a reveal is a moderator's word and
    /// stands. One batch, durable on return; the number newly hidden.
    pub async fn hide_all(
        &self,
        room_id: RoomId,
        event_ids: Vec<EventId>,
        labels: &[&str],
        now_ms: u64,
    ) -> Result<usize, spaces_store::Error> {
        let marks: Vec<(EventId, ModerationMark)> = {
            let known = self.marks();
            event_ids
                .into_iter()
                .filter_map(|id| match known.get(&id) {
                    Some(m) if m.hidden || m.revealed_by.is_some() => None,
                    Some(m) => Some((
                        id,
                        ModerationMark {
                            hidden: true,
                            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                            ..m.clone()
                        },
                    )),
                    None => Some((
                        id,
                        ModerationMark {
                            room_id: room_id.0,
                            hidden: true,
                            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
                            at_ms: now_ms,
                            revealed_by: None,
                            reported_by: Vec::new(),
                        },
                    )),
                })
                .collect()
        };
        if marks.is_empty() {
            return Ok(0);
        }
        let stored: Vec<([u8; 32], ModerationMark)> =
            marks.iter().map(|(id, m)| (id.0, m.clone())).collect();
        on_disk(&self.0.store, move |store| {
            store.put_moderation_marks(&stored)
        })
        .await?;
        let n = marks.len();
        self.marks().extend(marks);
        Ok(n)
    }

    /// Records that `by` reported `event_id` (a message of `room_id` they
    /// can read): it enters the room's review queue, hidden or not. A user
    /// counts once; at most [`MAX_REPORTERS`] are kept. Durable on return.
    pub async fn report(
        &self,
        room_id: RoomId,
        event_id: EventId,
        by: &UserId,
        now_ms: u64,
    ) -> Result<(), spaces_store::Error> {
        let by = by.to_string();
        let mark = match self.mark(&event_id) {
            Some(mark) if mark.reported_by.contains(&by) => return Ok(()),
            Some(mark) if mark.reported_by.len() >= MAX_REPORTERS => return Ok(()),
            Some(mut mark) => {
                mark.reported_by.push(by);
                mark
            }
            None => ModerationMark {
                room_id: room_id.0,
                hidden: false,
                labels: Vec::new(),
                at_ms: now_ms,
                revealed_by: None,
                reported_by: vec![by],
            },
        };
        let stored = mark.clone();
        on_disk(&self.0.store, move |store| {
            store.put_moderation_mark(&event_id.0, &stored)
        })
        .await?;
        self.marks().insert(event_id, mark);
        Ok(())
    }

    /// Whether `event_id` is hidden from this node's users (moderators
    /// excepted): marked hidden and not revealed.
    pub fn is_hidden(&self, event_id: &EventId) -> bool {
        self.marks()
            .get(event_id)
            .is_some_and(|m| m.hidden && m.revealed_by.is_none())
    }

    /// Whether `event` is hidden from this node's users: itself, or, for
    /// an edit or a reaction, the message it changes (a hidden message's
    /// new text must not travel as its edit).
    pub fn hides(&self, event: &spaces_protocol::Event) -> bool {
        use spaces_protocol::content::Content;
        let target = match event.content() {
            Content::Edit(edit) => Some(edit.target),
            Content::Reaction(reaction) => Some(reaction.target),
            _ => None,
        };
        let marks = self.marks();
        let hidden = |id: &EventId| {
            marks
                .get(id)
                .is_some_and(|m| m.hidden && m.revealed_by.is_none())
        };
        hidden(&event.id()) || target.is_some_and(|t| hidden(&t))
    }

    /// The mark of `event_id`, if any.
    pub fn mark(&self, event_id: &EventId) -> Option<ModerationMark> {
        self.marks().get(event_id).cloned()
    }

    /// Marks of one room, flagged or hidden, newest first (the review queue).
    pub fn marks_of(&self, room_id: &RoomId) -> Vec<(EventId, ModerationMark)> {
        let mut marks: Vec<(EventId, ModerationMark)> = self
            .marks()
            .iter()
            .filter(|(_, m)| m.room_id == room_id.0)
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        marks.sort_by(|a, b| b.1.at_ms.cmp(&a.1.at_ms).then(a.0.cmp(&b.0)));
        marks
    }

    /// Reveals a hidden event to the room's members on this node. `false`
    /// if it was not hidden (or already revealed). Durable on return.
    pub async fn reveal(
        &self,
        event_id: EventId,
        by: &UserId,
    ) -> Result<bool, spaces_store::Error> {
        let Some(mark) = self
            .mark(&event_id)
            .filter(|m| m.hidden && m.revealed_by.is_none())
        else {
            return Ok(false);
        };
        let revealed = ModerationMark {
            revealed_by: Some(by.to_string()),
            ..mark
        };
        let stored = revealed.clone();
        on_disk(&self.0.store, move |store| {
            store.put_moderation_mark(&event_id.0, &stored)
        })
        .await?;
        self.marks().insert(event_id, revealed);
        Ok(true)
    }

    /// Takes `event_id` off the review queue once a moderator acted on it
    /// (dismissed a flag or a report, revealed it, or dealt with its
    /// sender): its mark is removed. A message still hidden keeps its mark
    /// (`StillHidden`): a moderator reveals it or deletes it, and the queue
    /// leaves deleted messages out, their marks kept so that what was
    /// hidden stays hidden in every backlog. Durable on return.
    pub async fn resolve(&self, event_id: EventId) -> Result<Resolved, spaces_store::Error> {
        let Some(mark) = self.mark(&event_id) else {
            return Ok(Resolved::NotQueued);
        };
        if mark.hidden && mark.revealed_by.is_none() {
            return Ok(Resolved::StillHidden);
        }
        on_disk(&self.0.store, move |store| {
            store.delete_moderation_mark(&event_id.0)
        })
        .await?;
        self.marks().remove(&event_id);
        Ok(Resolved::Cleared)
    }

    pub fn status(&self) -> Status {
        let (state, library, looked) = match &self.0.state {
            State::Off => ("off", None, Vec::new()),
            State::Unavailable { looked } => ("unavailable", None, looked.clone()),
            State::Ready { library, .. } => ("ready", Some(library.clone()), Vec::new()),
        };
        Status {
            state,
            library,
            looked,
            thresholds: self.0.thresholds,
            threads: self.0.threads,
        }
    }

    /// Whether `username` is one of this node's moderators (admins are
    /// checked by the caller).
    pub fn is_moderator(&self, username: &str) -> bool {
        self.0.moderators.contains(&username.to_lowercase())
    }

    pub fn thresholds(&self) -> Thresholds {
        self.0.thresholds
    }

    /// Scores `text` and the labels it reaches under the node's thresholds.
    pub async fn score(&self, text: &str) -> Result<Verdict, ModerationError> {
        let moderator = match &self.0.state {
            State::Off => return Err(ModerationError::Off),
            State::Unavailable { .. } => return Err(ModerationError::Unavailable),
            State::Ready { moderator, .. } => moderator,
        };
        let scores = moderator.score(text).await.map_err(|e| match e {
            spaces_moderation::Error::Busy => ModerationError::Busy,
            other => ModerationError::Failed(other.to_string()),
        })?;
        Ok(Verdict {
            scores,
            labels: scores.over(&self.0.thresholds),
        })
    }
}

// The `[moderation]` section of the node's configuration (config.rs
// re-exports it): here, so that this service does not import the config.

/// `[moderation]`: the local toxicity classifier (crates/moderation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModerationConfig {
    /// Score messages with the local model. Off: ONNX Runtime is never
    /// loaded and moderation reports `off`.
    pub enabled: bool,
    /// The ONNX Runtime library (`libonnxruntime.so`). Unset: the
    /// `ORT_DYLIB_PATH` environment variable, else
    /// `<target>/onnxruntime/libonnxruntime.so` beside a binary in
    /// `<target>/<profile>/` (where scripts/install-onnxruntime.sh puts it).
    /// Not found: the node serves chat and reports moderation `unavailable`,
    /// naming where it looked.
    pub onnxruntime_path: Option<PathBuf>,
    /// Inference threads, each one core: one scores tens of thousands of
    /// messages a second (crates/moderation/README.md).
    pub threads: usize,
    /// Usernames of this node's moderators, who may use the moderation
    /// API beside the node's admins.
    pub moderators: Vec<String>,
    /// The node's default thresholds: a label whose score reaches its
    /// threshold is flagged.
    pub thresholds: ThresholdsConfig,
    /// Ban lists (room ids, `!...`) every room of this node follows,
    /// beside the lists a room follows itself (services/banlists.rs). The
    /// node must hold each list room: one of its users joins it.
    pub ban_lists: Vec<String>,
}

impl Default for ModerationConfig {
    fn default() -> ModerationConfig {
        ModerationConfig {
            enabled: true,
            onnxruntime_path: None,
            threads: 1,
            moderators: Vec::new(),
            thresholds: ThresholdsConfig::default(),
            ban_lists: Vec::new(),
        }
    }
}

/// A threshold per label, each in (0, 1].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdsConfig {
    pub insult: f32,
    pub threat: f32,
    pub self_harm: f32,
    pub sexual: f32,
    pub hate: f32,
}

impl Default for ThresholdsConfig {
    /// 0.5: the operating point of the figures in models/toxicity/README.md.
    fn default() -> ThresholdsConfig {
        ThresholdsConfig {
            insult: 0.5,
            threat: 0.5,
            self_harm: 0.5,
            sexual: 0.5,
            hate: 0.5,
        }
    }
}

impl ThresholdsConfig {
    pub fn thresholds(&self) -> spaces_moderation::Thresholds {
        spaces_moderation::Thresholds([
            self.insult,
            self.threat,
            self.self_harm,
            self.sexual,
            self.hate,
        ])
    }
}

/// Most ban lists a node follows in every room: each is matched against
/// every sender of every room.
pub const MAX_NODE_BAN_LISTS: usize = 32;

impl ModerationConfig {
    /// `ban_lists` as room ids.
    pub fn ban_list_ids(&self) -> anyhow::Result<Vec<RoomId>> {
        if self.ban_lists.len() > MAX_NODE_BAN_LISTS {
            bail!("moderation.ban_lists: at most {MAX_NODE_BAN_LISTS} lists");
        }
        self.ban_lists
            .iter()
            .map(|text| {
                text.parse::<RoomId>()
                    .map_err(|e| anyhow::anyhow!("moderation.ban_lists: {text:?}: {e}"))
            })
            .collect()
    }

    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.ban_list_ids()?;
        if !(1..=64).contains(&self.threads) {
            bail!("moderation.threads must be from 1 to 64");
        }
        if self
            .thresholds
            .thresholds()
            .0
            .iter()
            .any(|t| !(*t > 0.0 && *t <= 1.0))
        {
            bail!("moderation.thresholds: each must be above 0 and at most 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spaces_protocol::content::PolicyRule;

    #[test]
    fn the_strongest_reached_action_wins_and_names_its_labels() {
        let rule = |label: &str, threshold_milli, action| PolicyRule {
            label: label.into(),
            threshold_milli,
            action,
        };
        let policy = ModerationPolicy {
            rules: vec![
                rule("insult", 500, PolicyAction::Flag),
                rule("threat", 800, PolicyAction::Hide),
                rule("hate", 700, PolicyAction::Hide),
                rule("sexual", 900, PolicyAction::Block),
                rule("future_label", 1, PolicyAction::Block),
            ],
        };
        // insult, threat, self_harm, sexual, hate
        let scores = |s: [f32; 5]| Scores(s);
        assert_eq!(
            apply_policy(&policy, &scores([0.1, 0.1, 0.9, 0.1, 0.1])),
            (PolicyAction::Allow, vec![])
        );
        assert_eq!(
            apply_policy(&policy, &scores([0.6, 0.1, 0.0, 0.0, 0.0])),
            (PolicyAction::Flag, vec!["insult".to_owned()])
        );
        assert_eq!(
            apply_policy(&policy, &scores([0.6, 0.8, 0.0, 0.0, 0.95])),
            (
                PolicyAction::Hide,
                vec!["threat".to_owned(), "hate".to_owned()]
            )
        );
        assert_eq!(
            apply_policy(&policy, &scores([0.6, 0.8, 0.0, 0.9, 0.0])),
            (PolicyAction::Block, vec!["sexual".to_owned()])
        );
        assert_eq!(
            apply_policy(&policy, &scores([0.0, 0.799, 0.0, 0.0, 0.0])),
            (PolicyAction::Allow, vec![])
        );
    }

    #[test]
    fn the_library_comes_from_one_source() {
        let exe = Path::new("/t/debug/spaces");
        let mut config = ModerationConfig::default();
        let beside = vec![PathBuf::from("/t/onnxruntime/libonnxruntime.so")];
        assert_eq!(candidates(&config, None, exe), beside);
        assert_eq!(
            candidates(&config, Some(PathBuf::new()), exe),
            beside,
            "an empty ORT_DYLIB_PATH is unset"
        );
        let env = PathBuf::from("/env/libonnxruntime.so");
        assert_eq!(
            candidates(&config, Some(env.clone()), exe),
            vec![env.clone()]
        );
        config.onnxruntime_path = Some(PathBuf::from("/cfg/lib.so"));
        assert_eq!(
            candidates(&config, Some(env), exe),
            vec![PathBuf::from("/cfg/lib.so")]
        );
    }
}
