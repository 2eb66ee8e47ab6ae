//! Notifications: per-user records of the events that notified them, their unread marks, the
//! users' notification settings, and the notifier's cursor, all in the `notifications` tree.
//!
//! The store does not decide who is notified (the node's notifier does, with the rules of
//! `spaces-notify`); it keeps what it is given. A batch of new notifications and the cursor
//! past the events that produced them are one atomic sled batch, so after a crash the notifier
//! resumes after the last batch it wrote: no event notifies twice, none is skipped. A
//! notification is unread while its unread mark exists: marking read removes a key, which needs
//! no compare-and-swap and cannot race a new notification into a lost update.

use crate::keys::{self, tree};
use crate::records::{self, Notification, NotifySettings, PushDelivery, PushSubscription};
use crate::{Error, Id, Store};

/// A stored notification with its place: the seq of the event it is about, which is also its
/// id within the user's list, and whether it is unread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationAt {
    pub seq: u64,
    pub unread: bool,
    pub notification: Notification,
}

impl Store {
    /// The last stream seq the notifier has handled (0 before it ever ran).
    pub fn notify_cursor(&self) -> Result<u64, Error> {
        match self.notifications.get(keys::NOTIFY_CURSOR)? {
            None => Ok(0),
            Some(value) => keys::decode_seq(tree::NOTIFICATIONS, &keys::NOTIFY_CURSOR, &value),
        }
    }

    /// Adds `added` (username, event seq, notification), each unread, removes `removed`
    /// (username, event seq) with their marks, queues `pushes` (due ms, delivery), and moves the
    /// cursor to `cursor`: one atomic batch, *not* flushed. Everything it writes is derived from
    /// the event log, which is durable first: a crash loses the batch and the cursor together
    /// (sled recovers a batch whole or not at all), and the notifier decides those events again.
    /// So it needs no fsync of its own; the writer's next commit, any flushed write, or sled's
    /// periodic flush makes it durable.
    pub fn write_notifications(
        &self,
        added: &[(String, u64, Notification)],
        removed: &[(String, u64)],
        pushes: &[(u64, PushDelivery)],
        cursor: u64,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (due_ms, delivery) in pushes {
            let id = self.db.generate_id()?;
            let value = records::encode(tree::NOTIFICATIONS, delivery)?;
            batch.insert(&keys::push_delivery(*due_ms, id)[..], value);
        }
        for (username, seq) in removed {
            batch.remove(keys::notification(keys::NOTIFICATION_TAG, username, *seq));
            batch.remove(keys::notification(keys::UNREAD_TAG, username, *seq));
        }
        for (username, seq, notification) in added {
            let value = records::encode(tree::NOTIFICATIONS, notification)?;
            batch.insert(
                keys::notification(keys::NOTIFICATION_TAG, username, *seq),
                value,
            );
            batch.insert(
                keys::notification(keys::UNREAD_TAG, username, *seq),
                &[][..],
            );
        }
        batch.insert(&keys::NOTIFY_CURSOR[..], &keys::seq(cursor)[..]);
        self.notifications.apply_batch(batch)?;
        Ok(())
    }

    /// `username`'s notification of the event at `seq`, if any.
    pub fn notification(&self, username: &str, seq: u64) -> Result<Option<NotificationAt>, Error> {
        let key = keys::notification(keys::NOTIFICATION_TAG, username, seq);
        let Some(value) = self.notifications.get(&key)? else {
            return Ok(None);
        };
        let unread =
            self.notifications
                .contains_key(keys::notification(keys::UNREAD_TAG, username, seq))?;
        Ok(Some(NotificationAt {
            seq,
            unread,
            notification: records::decode(tree::NOTIFICATIONS, &key, &value)?,
        }))
    }

    /// The seqs of `username`'s notifications, newest first, unread ones or all.
    pub fn notification_seqs(&self, username: &str, unread_only: bool) -> Result<Vec<u64>, Error> {
        let tag = match unread_only {
            true => keys::UNREAD_TAG,
            false => keys::NOTIFICATION_TAG,
        };
        let prefix = keys::notify_prefix(tag, username);
        self.notifications
            .scan_prefix(&prefix)
            .rev()
            .map(|entry| keys::decode_notification(&prefix, &entry?.0))
            .collect()
    }

    /// A page of `username`'s notifications, unread first, each part newest first: at most
    /// `limit` after `after` (the (unread, seq) of the previous page's last).
    pub fn notifications_page(
        &self,
        username: &str,
        after: Option<(bool, u64)>,
        limit: usize,
    ) -> Result<Vec<NotificationAt>, Error> {
        let mut page = Vec::new();
        for unread in [true, false] {
            let bound = match after {
                // Unread ones all come before read ones.
                Some((false, _)) if unread => continue,
                Some((after_unread, seq)) if after_unread == unread => seq,
                _ => u64::MAX,
            };
            let tag = match unread {
                true => keys::UNREAD_TAG,
                false => keys::NOTIFICATION_TAG,
            };
            let prefix = keys::notify_prefix(tag, username);
            let end = keys::notification(tag, username, bound);
            // Seqs below `bound` (an unbounded start for `u64::MAX` keeps `u64::MAX` out, a seq
            // no store reaches).
            for entry in self.notifications.range(prefix.clone()..end).rev() {
                if page.len() == limit {
                    return Ok(page);
                }
                let (key, _) = entry?;
                let seq = keys::decode_notification(&prefix, &key)?;
                match self.notification(username, seq)? {
                    Some(found) if found.unread == unread => page.push(found),
                    // An unread mark without its record (removed in between), or a read
                    // notification met while listing all records but still unread.
                    _ => {}
                }
            }
        }
        Ok(page)
    }

    /// Marks `username`'s notification at `seq` read: `false` if there is none. Durable.
    pub fn mark_notification_read(&self, username: &str, seq: u64) -> Result<bool, Error> {
        let key = keys::notification(keys::NOTIFICATION_TAG, username, seq);
        if !self.notifications.contains_key(key)? {
            return Ok(false);
        }
        self.notifications
            .remove(keys::notification(keys::UNREAD_TAG, username, seq))?;
        self.db.flush()?;
        Ok(true)
    }

    /// Marks all of `username`'s notifications read; returns how many were unread. Durable.
    pub fn mark_all_notifications_read(&self, username: &str) -> Result<usize, Error> {
        let prefix = keys::notify_prefix(keys::UNREAD_TAG, username);
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for entry in self.notifications.scan_prefix(&prefix).keys() {
            batch.remove(entry?);
            n += 1;
        }
        if n > 0 {
            self.notifications.apply_batch(batch)?;
            self.db.flush()?;
        }
        Ok(n)
    }

    /// How many of `username`'s notifications are unread.
    pub fn unread_notifications(&self, username: &str) -> Result<usize, Error> {
        let prefix = keys::notify_prefix(keys::UNREAD_TAG, username);
        Ok(self.notifications.scan_prefix(&prefix).keys().count())
    }

    /// `username`'s notification settings, if they ever set any.
    pub fn notify_settings(&self, username: &str) -> Result<Option<NotifySettings>, Error> {
        let key = keys::notify_settings(username);
        self.notifications
            .get(&key)?
            .map(|value| records::decode(tree::NOTIFICATIONS, &key, &value))
            .transpose()
    }

    /// Every user's notification settings, by username: the notifier's
    /// index of who listens beyond mentions, read once at its start.
    pub fn all_notify_settings(&self) -> Result<Vec<(String, NotifySettings)>, Error> {
        self.notifications
            .scan_prefix(keys::notify_settings(""))
            .map(|entry| {
                let (key, value) = entry?;
                let username = keys::decode_notify_settings(&key)?;
                Ok((
                    username,
                    records::decode(tree::NOTIFICATIONS, &key, &value)?,
                ))
            })
            .collect()
    }

    /// Replaces `username`'s notification settings. Durable on return.
    pub fn put_notify_settings(
        &self,
        username: &str,
        settings: &NotifySettings,
    ) -> Result<(), Error> {
        let value = records::encode(tree::NOTIFICATIONS, settings)?;
        self.notifications
            .insert(keys::notify_settings(username), value)?;
        self.db.flush()?;
        Ok(())
    }
}

/// A queued push delivery's place in the queue: (due ms, id).
pub type PushKey = (u64, u64);

/// Deliveries due now, and when the next one after them is due.
pub type DuePushes = (Vec<(PushKey, PushDelivery)>, Option<u64>);

impl Store {
    /// Keeps `username`'s push subscription `id`, replacing one with that id. Durable.
    pub fn put_push_subscription(
        &self,
        username: &str,
        id: &Id,
        subscription: &PushSubscription,
    ) -> Result<(), Error> {
        let value = records::encode(tree::NOTIFICATIONS, subscription)?;
        self.notifications
            .insert(keys::push_subscription(username, id), value)?;
        self.db.flush()?;
        Ok(())
    }

    /// `username`'s push subscriptions, by id.
    pub fn push_subscriptions(&self, username: &str) -> Result<Vec<(Id, PushSubscription)>, Error> {
        let prefix = keys::notify_prefix(keys::PUSH_SUBSCRIPTION_TAG, username);
        self.notifications
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                let (_, id) = keys::decode_push_subscription(&key)?;
                Ok((id, records::decode(tree::NOTIFICATIONS, &key, &value)?))
            })
            .collect()
    }

    /// Removes `username`'s push subscription `id`: whether there was one. Durable.
    pub fn remove_push_subscription(&self, username: &str, id: &Id) -> Result<bool, Error> {
        let removed = self
            .notifications
            .remove(keys::push_subscription(username, id))?
            .is_some();
        if removed {
            self.db.flush()?;
        }
        Ok(removed)
    }

    /// The usernames with at least one push subscription.
    pub fn push_subscribers(&self) -> Result<std::collections::BTreeSet<String>, Error> {
        self.notifications
            .scan_prefix([keys::PUSH_SUBSCRIPTION_TAG])
            .keys()
            .map(|key| Ok(keys::decode_push_subscription(&key?)?.0))
            .collect()
    }

    /// Up to `limit` queued deliveries due at or before `now_ms`, in due order; and when the
    /// next one after them is due, if any.
    pub fn due_pushes(&self, now_ms: u64, limit: usize) -> Result<DuePushes, Error> {
        let mut due = Vec::new();
        for entry in self.notifications.scan_prefix([keys::PUSH_QUEUE_TAG]) {
            let (key, value) = entry?;
            let (due_ms, id) = keys::decode_push_delivery(&key)?;
            if due_ms > now_ms || due.len() == limit {
                return Ok((due, Some(due_ms)));
            }
            due.push((
                (due_ms, id),
                records::decode(tree::NOTIFICATIONS, &key, &value)?,
            ));
        }
        Ok((due, None))
    }

    /// Takes the delivery at `key` off the queue and, with `retry`, queues it again: one atomic
    /// batch, durable on return.
    pub fn finish_push(
        &self,
        key: PushKey,
        retry: Option<(u64, &PushDelivery)>,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        batch.remove(&keys::push_delivery(key.0, key.1)[..]);
        if let Some((due_ms, delivery)) = retry {
            let value = records::encode(tree::NOTIFICATIONS, delivery)?;
            batch.insert(&keys::push_delivery(due_ms, key.1)[..], value);
        }
        self.notifications.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{open_temp, reopen};

    fn note(n: u8) -> Notification {
        Notification {
            room_id: [n; 32],
            event_id: [n; 32],
            sender: "@a:x".into(),
            reason: "mention".into(),
            origin_ts: u64::from(n),
            excerpt: format!("m{n}"),
        }
    }

    fn seqs(page: &[NotificationAt]) -> Vec<(bool, u64)> {
        page.iter().map(|n| (n.unread, n.seq)).collect()
    }

    #[test]
    fn unread_first_newest_first_paged_and_durable() {
        let (dir, store) = open_temp();
        assert_eq!(store.notify_cursor().unwrap(), 0);
        let added: Vec<_> = (1..=5)
            .map(|n| ("Al".to_owned(), n, note(n as u8)))
            .collect();
        store.write_notifications(&added, &[], &[], 9).unwrap();
        store
            .write_notifications(&[("bo".into(), 3, note(3))], &[], &[], 10)
            .unwrap();
        assert!(store.mark_notification_read("al", 4).unwrap());
        assert!(store.mark_notification_read("al", 2).unwrap());
        assert!(!store.mark_notification_read("al", 7).unwrap());
        let store = reopen(&dir, store);
        assert_eq!(store.notify_cursor().unwrap(), 10);
        assert_eq!(store.unread_notifications("al").unwrap(), 3);
        let all = store.notifications_page("al", None, 10).unwrap();
        assert_eq!(
            seqs(&all),
            [(true, 5), (true, 3), (true, 1), (false, 4), (false, 2)]
        );
        assert_eq!(all[0].notification, note(5));
        // Paging gives the same order, whatever the page size.
        for limit in 1..=5 {
            let mut paged = Vec::new();
            let mut after = None;
            loop {
                let page = store.notifications_page("al", after, limit).unwrap();
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|n| (n.unread, n.seq));
                paged.extend(page);
            }
            assert_eq!(seqs(&paged), seqs(&all), "limit {limit}");
        }
        assert_eq!(store.notification_seqs("al", true).unwrap(), [5, 3, 1]);
        assert_eq!(
            store.notification_seqs("al", false).unwrap(),
            [5, 4, 3, 2, 1]
        );
        // Another user's rows stay apart.
        assert_eq!(store.unread_notifications("bo").unwrap(), 1);
        assert_eq!(store.mark_all_notifications_read("al").unwrap(), 3);
        assert_eq!(store.unread_notifications("al").unwrap(), 0);
        assert_eq!(store.unread_notifications("bo").unwrap(), 1);
        store
            .write_notifications(&[], &[("al".into(), 5)], &[], 11)
            .unwrap();
        assert_eq!(store.notification("al", 5).unwrap(), None);
        assert_eq!(store.notification_seqs("al", false).unwrap(), [4, 3, 2, 1]);
    }

    #[test]
    fn push_subscriptions_and_the_queue() {
        let (dir, store) = open_temp();
        let sub = |n: u8| PushSubscription {
            endpoint: format!("https://push.example/{n}"),
            p256dh: vec![4; 65],
            auth: [n; 16],
            created_ms: 1,
        };
        store
            .put_push_subscription("al", &[1; 32], &sub(1))
            .unwrap();
        store
            .put_push_subscription("al", &[2; 32], &sub(2))
            .unwrap();
        store
            .put_push_subscription("bo", &[1; 32], &sub(3))
            .unwrap();
        let delivery = |seq| PushDelivery {
            username: "al".into(),
            seq,
            subscriptions: Vec::new(),
            attempts: 0,
        };
        store
            .write_notifications(
                &[("al".into(), 7, note(7))],
                &[],
                &[(200, delivery(7)), (100, delivery(8))],
                8,
            )
            .unwrap();
        let store = reopen(&dir, store);
        assert_eq!(store.push_subscriptions("al").unwrap().len(), 2);
        assert_eq!(
            store
                .push_subscribers()
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            ["al", "bo"]
        );
        assert!(store.remove_push_subscription("al", &[2; 32]).unwrap());
        assert!(!store.remove_push_subscription("al", &[2; 32]).unwrap());
        assert_eq!(store.push_subscriptions("al").unwrap()[0].1, sub(1));
        // Due order; the next due time past the ones handed out.
        let (due, next) = store.due_pushes(150, 10).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.seq, 8);
        assert_eq!(next, Some(200));
        let (key, mut retry) = due[0].clone();
        retry.attempts = 1;
        store.finish_push(key, Some((300, &retry))).unwrap();
        let (due, next) = store.due_pushes(250, 10).unwrap();
        assert_eq!(due.iter().map(|d| d.1.seq).collect::<Vec<_>>(), [7]);
        assert_eq!(next, Some(300));
        store.finish_push(due[0].0, None).unwrap();
        let store = reopen(&dir, store);
        let (due, next) = store.due_pushes(u64::MAX, 10).unwrap();
        assert_eq!((due.len(), due[0].1.attempts, next), (1, 1, None));
    }

    #[test]
    fn settings_round_trip() {
        let (dir, store) = open_temp();
        assert_eq!(store.notify_settings("al").unwrap(), None);
        let settings = NotifySettings {
            level: "all".into(),
            keywords: vec!["deploy".into()],
            rooms: vec![crate::RoomNotifySetting {
                room_id: [1; 32],
                level: None,
                mute_until_ms: Some(5),
            }],
        };
        store.put_notify_settings("Al", &settings).unwrap();
        store
            .put_notify_settings("bo", &NotifySettings::default())
            .unwrap();
        let store = reopen(&dir, store);
        assert_eq!(store.notify_settings("al").unwrap(), Some(settings.clone()));
        assert_eq!(
            store.all_notify_settings().unwrap(),
            [
                ("al".to_owned(), settings),
                ("bo".to_owned(), NotifySettings::default())
            ]
        );
    }
}
