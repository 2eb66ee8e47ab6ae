//! Client transaction ids: which event a session's send with a given `txn_id` made, so that a
//! resend after a lost acknowledgement answers that event instead of making another.
//!
//! One `txns` record per session: its last [`MAX_TXNS_PER_SESSION`] (txn id, room, event),
//! newest last, so what a session can make the node remember is bounded by construction. The
//! node writes it right after the event is durable (not in the event's own commit): a crash
//! between the two forgets the id, and a resend then makes a second event. Deleting a session
//! deletes its record in the same transaction.

use crate::keys::tree;
use crate::records::{self, SentTxn, SentTxns};
use crate::{Error, Id, Store};

/// Transaction ids remembered per session. A client resends only what it has not seen
/// acknowledged, in order, so it never has more than a few in flight; 64 leaves room for many
/// tabs of one session.
pub const MAX_TXNS_PER_SESSION: usize = 64;

impl Store {
    /// The (room, event) that session `session_id` sent with `txn_id`, if it is still remembered.
    pub fn sent_txn(&self, session_id: &str, txn_id: &str) -> Result<Option<(Id, Id)>, Error> {
        let Some(bytes) = self.txns.get(session_id.as_bytes())? else {
            return Ok(None);
        };
        let sent: SentTxns = records::decode_secret_keyed(tree::TXNS, &bytes)?;
        Ok(sent
            .entries
            .iter()
            .rev()
            .find(|e| e.txn_id == txn_id)
            .map(|e| (e.room_id, e.event_id)))
    }

    /// Remembers that session `session_id` sent `event_id` in `room_id` with `txn_id`, forgetting
    /// its oldest id past [`MAX_TXNS_PER_SESSION`]. Flushed before it returns.
    pub fn record_txn(
        &self,
        session_id: &str,
        txn_id: &str,
        room_id: Id,
        event_id: Id,
    ) -> Result<(), Error> {
        let key = session_id.as_bytes();
        loop {
            let old = self.txns.get(key)?;
            let mut sent: SentTxns = match &old {
                Some(bytes) => records::decode_secret_keyed(tree::TXNS, bytes)?,
                None => SentTxns::default(),
            };
            sent.entries.retain(|e| e.txn_id != txn_id);
            sent.entries.push(SentTxn {
                txn_id: txn_id.to_owned(),
                room_id,
                event_id,
            });
            let excess = sent.entries.len().saturating_sub(MAX_TXNS_PER_SESSION);
            sent.entries.drain(..excess);
            let new = records::encode(tree::TXNS, &sent)?;
            if self.txns.compare_and_swap(key, old, Some(new))?.is_ok() {
                break;
            }
        }
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{open_temp, reopen};

    use super::*;

    #[test]
    fn remembered_across_restart_and_bounded() {
        let (dir, store) = open_temp();
        store.record_txn("s1", "t0", [1; 32], [2; 32]).unwrap();
        assert_eq!(
            store.sent_txn("s1", "t0").unwrap(),
            Some(([1; 32], [2; 32]))
        );
        assert_eq!(store.sent_txn("s2", "t0").unwrap(), None);
        assert_eq!(store.sent_txn("s1", "t1").unwrap(), None);
        let store = reopen(&dir, store);
        assert_eq!(
            store.sent_txn("s1", "t0").unwrap(),
            Some(([1; 32], [2; 32]))
        );
        for i in 1..=MAX_TXNS_PER_SESSION {
            store
                .record_txn("s1", &format!("t{i}"), [1; 32], [i as u8; 32])
                .unwrap();
        }
        assert_eq!(store.sent_txn("s1", "t0").unwrap(), None);
        assert_eq!(
            store
                .sent_txn("s1", &format!("t{MAX_TXNS_PER_SESSION}"))
                .unwrap(),
            Some(([1; 32], [MAX_TXNS_PER_SESSION as u8; 32]))
        );
        assert_eq!(
            store.sent_txn("s1", "t1").unwrap(),
            Some(([1; 32], [1; 32]))
        );
    }
}
