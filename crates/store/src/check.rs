//! [`Store::check`]: reads every record of every tree and reports what does not decode or does
//! not agree with the rest, for `spaces admin check`. It does not repair anything.
//!
//! The event log is walked in seq order; for each record the store checks that seqs follow on
//! without gap or overlap, that each event has its event-id entry naming its seq and that each
//! room of the record has its room-index entry naming exactly that room's offsets. A second walk
//! over the index entries finds those that name no event or the wrong one. The caller checks the
//! events' bytes (the store does not decode events).

use std::collections::BTreeMap;

use crate::events::{StoredEvent, decode_record};
use crate::keys::{self, tree};
use crate::records::{self, FlipRecord, RoomIndexRecord, SentTxns};
use crate::{
    Account, AuthPolicy, Error, Id, InviteLink, InviteToken, ModerationMark, PasskeyRecord,
    Profile, Session, Store,
};

/// Problems kept in a report; past this only the count grows.
const MAX_PROBLEMS: usize = 1000;

/// What [`Store::check`] found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub n_events: u64,
    pub n_records: u64,
    pub n_entries: u64,
    /// The first [`MAX_PROBLEMS`] problems, each naming its tree and key.
    pub problems: Vec<String>,
    /// All problems found, including those not kept.
    pub n_problems: u64,
}

impl CheckReport {
    fn problem(&mut self, what: String) {
        self.n_problems += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(what);
        }
    }
}

impl Store {
    /// Checks every tree (module docs); `check_event` is asked about each stored event and
    /// returns what is wrong with it. Fails only when the database itself cannot be read.
    pub fn check(
        &self,
        check_event: &mut dyn FnMut(&StoredEvent) -> Option<String>,
    ) -> Result<CheckReport, Error> {
        let mut report = CheckReport::default();
        self.check_log(&mut report, check_event)?;
        self.check_indexes(&mut report)?;
        self.check_small_trees(&mut report)?;
        Ok(report)
    }

    fn check_log(
        &self,
        report: &mut CheckReport,
        check_event: &mut dyn FnMut(&StoredEvent) -> Option<String>,
    ) -> Result<(), Error> {
        let mut next_seq = 1;
        for entry in self.log.range(..keys::INDEX_START) {
            let (key, value) = entry?;
            report.n_records += 1;
            let events = match decode_record(&key, &value) {
                Ok(events) => events,
                Err(e) => {
                    report.problem(e.to_string());
                    continue;
                }
            };
            let record_seq = events[0].seq;
            if record_seq != next_seq {
                report.problem(format!(
                    "log: record at seq {record_seq} follows seq {}: events are missing or overlap",
                    next_seq - 1
                ));
            }
            next_seq = record_seq + events.len() as u64;
            let mut rooms: BTreeMap<Id, Vec<u8>> = BTreeMap::new();
            for (offset, event) in (0u8..=u8::MAX).zip(&events) {
                report.n_events += 1;
                rooms.entry(event.room_id).or_default().push(offset);
                if let Some(what) = check_event(event) {
                    report.problem(format!("log: event at seq {}: {what}", event.seq));
                }
                match self.log.get(keys::id_index(&event.event_id))? {
                    None => report.problem(format!(
                        "log: event at seq {} has no event-id index entry",
                        event.seq
                    )),
                    Some(value) => match keys::decode_seq(tree::LOG, &key, &value) {
                        Ok(seq) if seq == event.seq => {}
                        Ok(seq) => report.problem(format!(
                            "log: the event-id index names seq {seq} for the event at seq {}",
                            event.seq
                        )),
                        Err(e) => report.problem(e.to_string()),
                    },
                }
            }
            for (room_id, offsets) in rooms {
                let index_key = keys::room_index(&room_id, record_seq);
                let stored = match self.log.get(index_key)? {
                    Some(value) => {
                        records::decode::<RoomIndexRecord>(tree::LOG, &index_key, &value)
                            .map(|entry| entry.offsets.into_owned())
                    }
                    None => {
                        report.problem(format!(
                            "log: record at seq {record_seq} has no room-index entry for one of its rooms"
                        ));
                        continue;
                    }
                };
                match stored {
                    Ok(stored) if stored == offsets => {}
                    Ok(_) => report.problem(format!(
                        "log: the room index names other events of record {record_seq} than it holds"
                    )),
                    Err(e) => report.problem(e.to_string()),
                }
            }
        }
        Ok(())
    }

    /// Index entries that name no event, or an event of another room or id.
    fn check_indexes(&self, report: &mut CheckReport) -> Result<(), Error> {
        for entry in self.log.range(keys::INDEX_START..) {
            let (key, value) = entry?;
            if keys::is_id_index(&key) {
                let seq = match keys::decode_seq(tree::LOG, &key, &value) {
                    Ok(seq) => seq,
                    Err(e) => {
                        report.problem(e.to_string());
                        continue;
                    }
                };
                let found = self.events_at(&[seq])?;
                if found
                    .first()
                    .is_none_or(|event| event.event_id[..] != key[1..])
                {
                    report.problem(format!(
                        "log: an event-id index entry names seq {seq}, which does not hold that event"
                    ));
                }
            } else if keys::is_room_index(&key) {
                let record_seq = keys::decode_room_index(&key)?;
                let offsets = match records::decode::<RoomIndexRecord>(tree::LOG, &key, &value) {
                    Ok(entry) => entry.offsets.into_owned(),
                    Err(e) => {
                        report.problem(e.to_string());
                        continue;
                    }
                };
                let Some(record) = self.log.get(keys::seq(record_seq))? else {
                    report.problem(format!(
                        "log: a room-index entry names record {record_seq}, which does not exist"
                    ));
                    continue;
                };
                let Ok(events) = decode_record(&keys::seq(record_seq), &record) else {
                    continue; // reported by the log walk
                };
                let wrong = offsets.iter().any(|&offset| {
                    events
                        .get(usize::from(offset))
                        .is_none_or(|event| event.room_id[..] != key[1..33])
                });
                if wrong {
                    report.problem(format!(
                        "log: a room-index entry of record {record_seq} names events of another room or past its end"
                    ));
                }
            } else {
                report.problem(
                    Error::corrupt(tree::LOG, &key, "not a record or index key").to_string(),
                );
            }
        }
        for entry in self.flips.iter() {
            let (key, value) = entry?;
            report.n_entries += 1;
            if let Err(e) = records::decode::<FlipRecord>(tree::FLIPS, &key, &value) {
                report.problem(e.to_string());
            }
        }
        Ok(())
    }

    fn check_small_trees(&self, report: &mut CheckReport) -> Result<(), Error> {
        fn each<R: records::Record>(
            tree: &sled::Tree,
            name: &'static str,
            secret_keys: bool,
            report: &mut CheckReport,
        ) -> Result<(), Error> {
            for entry in tree.iter() {
                let (key, value) = entry?;
                report.n_entries += 1;
                let decoded = if secret_keys {
                    records::decode_secret_keyed::<R>(name, &value).map(drop)
                } else {
                    records::decode::<R>(name, &key, &value).map(drop)
                };
                if let Err(e) = decoded {
                    report.problem(e.to_string());
                }
            }
            Ok(())
        }
        /// A per-user index (`len ‖ user ‖ id` → empty): every entry must
        /// name a record `target` holds.
        fn each_index(
            index: &sled::Tree,
            name: &'static str,
            target: &sled::Tree,
            what: &str,
            report: &mut CheckReport,
        ) -> Result<(), Error> {
            for entry in index.iter() {
                let (key, _) = entry?;
                report.n_entries += 1;
                let id = key
                    .get(8..)
                    .and_then(|rest| {
                        let len =
                            usize::try_from(u64::from_be_bytes(key[..8].try_into().ok()?)).ok()?;
                        rest.get(len..)
                    })
                    .map(<[u8]>::to_vec);
                match id {
                    Some(id) if target.contains_key(&id)? => {}
                    _ => report.problem(
                        Error::corrupt(name, &key, format!("names a missing {what}")).to_string(),
                    ),
                }
            }
            Ok(())
        }
        each::<Account>(&self.accounts, tree::ACCOUNTS, false, report)?;
        each::<Profile>(&self.profiles, tree::PROFILES, false, report)?;
        each::<Session>(&self.sessions, tree::SESSIONS, false, report)?;
        each::<InviteToken>(&self.invites, tree::INVITES, true, report)?;
        each::<InviteLink>(&self.invite_links, tree::INVITE_LINKS, true, report)?;
        each::<SentTxns>(&self.txns, tree::TXNS, true, report)?;
        each::<PasskeyRecord>(&self.passkeys, tree::PASSKEYS, false, report)?;
        each::<AuthPolicy>(&self.auth_policies, tree::AUTH_POLICIES, false, report)?;
        each::<crate::OAuthClient>(&self.oauth_clients, tree::OAUTH_CLIENTS, false, report)?;
        each::<crate::OAuthCode>(&self.oauth_codes, tree::OAUTH_CODES, true, report)?;
        each_index(
            &self.user_passkeys,
            tree::USER_PASSKEYS,
            &self.passkeys,
            "passkey",
            report,
        )?;
        each::<ModerationMark>(&self.moderation, tree::MODERATION, false, report)?;
        each_index(
            &self.user_sessions,
            tree::USER_SESSIONS,
            &self.sessions,
            "session",
            report,
        )?;
        for entry in self.notifications.iter() {
            let (key, value) = entry?;
            report.n_entries += 1;
            let decoded = match key.first() {
                Some(0x00) => keys::decode_seq(tree::NOTIFICATIONS, &key, &value).map(drop),
                Some(&keys::NOTIFICATION_TAG) => {
                    records::decode::<crate::Notification>(tree::NOTIFICATIONS, &key, &value)
                        .map(drop)
                }
                Some(&keys::UNREAD_TAG) => Ok(()),
                Some(0x03) => {
                    records::decode::<crate::NotifySettings>(tree::NOTIFICATIONS, &key, &value)
                        .map(drop)
                }
                Some(&keys::PUSH_SUBSCRIPTION_TAG) => keys::decode_push_subscription(&key)
                    .and_then(|_| {
                        records::decode::<crate::PushSubscription>(
                            tree::NOTIFICATIONS,
                            &key,
                            &value,
                        )
                    })
                    .map(drop),
                Some(&keys::PUSH_QUEUE_TAG) => keys::decode_push_delivery(&key)
                    .and_then(|_| {
                        records::decode::<crate::PushDelivery>(tree::NOTIFICATIONS, &key, &value)
                    })
                    .map(drop),
                _ => Err(Error::corrupt(tree::NOTIFICATIONS, &key, "unknown key tag")),
            };
            if let Err(e) = decoded {
                report.problem(e.to_string());
            }
        }
        for entry in self.email.iter() {
            let (key, value) = entry?;
            report.n_entries += 1;
            let decoded = match key.first() {
                Some(&keys::EMAIL_ADDRESS_TAG) => keys::decode_email_user(&key)
                    .and_then(|_| records::decode::<crate::EmailAddress>(tree::EMAIL, &key, &value))
                    .map(drop),
                Some(&keys::DIGEST_STATE_TAG) => keys::decode_email_user(&key)
                    .and_then(|_| records::decode::<crate::DigestState>(tree::EMAIL, &key, &value))
                    .map(drop),
                Some(&keys::EMAIL_QUEUE_TAG) => keys::decode_email_delivery(&key)
                    .and_then(|_| {
                        records::decode::<crate::EmailDelivery>(tree::EMAIL, &key, &value)
                    })
                    .map(drop),
                Some(&keys::EMAIL_INDEX_TAG) => match std::str::from_utf8(&value) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(Error::corrupt(tree::EMAIL, &key, "username is not UTF-8")),
                },
                Some(&keys::RESET_TOKEN_TAG) if key.len() == 33 => {
                    records::decode_secret_keyed::<crate::ResetToken>(tree::EMAIL, &value).map(drop)
                }
                _ => Err(Error::corrupt(tree::EMAIL, &key, "unknown key tag")),
            };
            if let Err(e) = decoded {
                report.problem(e.to_string());
            }
        }
        let last_seq = self.last_seq();
        for entry in self.read_markers.iter() {
            let (key, value) = entry?;
            report.n_entries += 1;
            match keys::decode_seq(tree::READ_MARKERS, &key, &value) {
                Ok(seq) if seq <= last_seq => {}
                Ok(seq) => report.problem(
                    Error::corrupt(
                        tree::READ_MARKERS,
                        &key,
                        format!("marker at seq {seq}, past the last event {last_seq}"),
                    )
                    .to_string(),
                ),
                Err(e) => report.problem(e.to_string()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NewEvent;
    use crate::store::tests::open_temp;

    fn ok(_: &StoredEvent) -> Option<String> {
        None
    }

    fn store_with_events() -> (tempfile::TempDir, Store) {
        let (dir, store) = open_temp();
        for id in 1..=3u8 {
            store
                .append_events(&[NewEvent {
                    room_id: [id % 2; 32],
                    event_id: [id; 32],
                    bytes: &[id],
                    flips: &[],
                }])
                .unwrap();
        }
        (dir, store)
    }

    #[test]
    fn a_sound_store_has_no_problems() {
        let (_dir, store) = store_with_events();
        let report = store.check(&mut ok).unwrap();
        assert_eq!(report.n_events, 3);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    /// Each injected damage is found, table-driven.
    #[test]
    fn injected_damage_is_found() {
        type Damage = fn(&Store);
        let cases: [(&str, Damage); 5] = [
            ("no event-id index entry", |s| {
                s.log.remove(keys::id_index(&[2; 32])).unwrap();
            }),
            ("names seq 1", |s| {
                s.log
                    .insert(keys::id_index(&[3; 32]), &keys::seq(1)[..])
                    .unwrap();
            }),
            ("no room-index entry", |s| {
                s.log.remove(keys::room_index(&[1; 32], 1)).unwrap();
            }),
            ("does not exist", |s| {
                s.log.remove(keys::seq(2)).unwrap();
            }),
            ("missing session", |s| {
                s.user_sessions
                    .insert(keys::user_item("bob", b"nope"), &[][..])
                    .unwrap();
            }),
        ];
        for (expected, damage) in cases {
            let (_dir, store) = store_with_events();
            damage(&store);
            let report = store.check(&mut ok).unwrap();
            assert!(
                report.problems.iter().any(|p| p.contains(expected)),
                "{expected}: {:?}",
                report.problems
            );
        }
    }

    #[test]
    fn the_callers_verdict_on_an_event_is_reported() {
        let (_dir, store) = store_with_events();
        let report = store
            .check(&mut |event| (event.seq == 2).then(|| "bad signature".to_owned()))
            .unwrap();
        assert_eq!(report.n_problems, 1);
        assert!(report.problems[0].contains("seq 2: bad signature"));
    }
}
