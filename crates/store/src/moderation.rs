//! Moderation marks: what this node's moderation decided about received
//! events, keyed by event id. Only this node's view: the events themselves
//! stay in the log untouched. Every write is durable on return.

use crate::keys::tree;
use crate::records::{self, ModerationMark};
use crate::{Error, Id, Store};

impl Store {
    /// Stores (or replaces) the mark of `event_id`. Durable on return.
    pub fn put_moderation_mark(&self, event_id: &Id, mark: &ModerationMark) -> Result<(), Error> {
        let value = records::encode(tree::MODERATION, mark)?;
        self.moderation.insert(event_id, value)?;
        self.db.flush()?;
        Ok(())
    }

    /// Removes the mark of `event_id`; false if it had none. Durable on return.
    pub fn delete_moderation_mark(&self, event_id: &Id) -> Result<bool, Error> {
        let removed = self.moderation.remove(event_id)?.is_some();
        self.db.flush()?;
        Ok(removed)
    }

    /// Stores (or replaces) several marks in one batch, one flush. Durable
    /// on return.
    pub fn put_moderation_marks(&self, marks: &[(Id, ModerationMark)]) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for (event_id, mark) in marks {
            batch.insert(&event_id[..], records::encode(tree::MODERATION, mark)?);
        }
        self.moderation.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    /// The mark of `event_id`, if it has one.
    pub fn moderation_mark(&self, event_id: &Id) -> Result<Option<ModerationMark>, Error> {
        self.moderation
            .get(event_id)?
            .map(|value| records::decode(tree::MODERATION, event_id, &value))
            .transpose()
    }

    /// Every mark, in event id order (read once at start).
    pub fn moderation_marks(&self) -> Result<Vec<(Id, ModerationMark)>, Error> {
        let mut marks = Vec::new();
        for entry in self.moderation.iter() {
            let (key, value) = entry?;
            let id: Id = key.as_ref().try_into().map_err(|_| {
                Error::corrupt(tree::MODERATION, &key, "key is not a 32-byte event id")
            })?;
            marks.push((id, records::decode(tree::MODERATION, &key, &value)?));
        }
        Ok(marks)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ModerationMark, Options, Store};

    #[test]
    fn marks_persist_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mark = ModerationMark {
            room_id: [1; 32],
            hidden: true,
            labels: vec!["threat".into()],
            at_ms: 5,
            revealed_by: None,
            reported_by: vec![],
        };
        {
            let store = Store::open(dir.path(), &Options::default()).unwrap();
            store.put_moderation_mark(&[2; 32], &mark).unwrap();
            let revealed = ModerationMark {
                revealed_by: Some("@mod:~n".into()),
                ..mark.clone()
            };
            store.put_moderation_mark(&[3; 32], &revealed).unwrap();
            store
                .put_moderation_marks(&[([5; 32], mark.clone()), ([6; 32], mark.clone())])
                .unwrap();
            assert_eq!(store.moderation_mark(&[6; 32]).unwrap(), Some(mark.clone()));
            assert_eq!(store.moderation_mark(&[3; 32]).unwrap(), Some(revealed));
            assert_eq!(store.moderation_mark(&[4; 32]).unwrap(), None);
        }
        let store = Store::open(dir.path(), &Options::default()).unwrap();
        let marks = store.moderation_marks().unwrap();
        assert_eq!(marks.len(), 4);
        assert_eq!(marks[0], ([2; 32], mark));
        assert!(store.check(&mut |_| None).unwrap().problems.is_empty());
    }
}
