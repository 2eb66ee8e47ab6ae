//! The registration mode an admin set at run time (the web client's admin console), kept in
//! the `meta` tree so it survives a restart and takes the place of the config's until cleared.

use crate::keys::{meta, tree};
use crate::records::{self, RegistrationSetting};
use crate::{Error, Store};

impl Store {
    /// The mode an admin set, if any: `open`, `invite` or `closed` as they wrote it.
    pub fn registration_mode(&self) -> Result<Option<String>, Error> {
        self.meta
            .get(meta::REGISTRATION_MODE)?
            .map(|value| {
                records::decode::<RegistrationSetting>(
                    tree::META,
                    meta::REGISTRATION_MODE.as_bytes(),
                    &value,
                )
                .map(|s| s.mode)
            })
            .transpose()
    }

    /// Sets the mode (`None`: back to the config's). Durable on return.
    pub fn set_registration_mode(&self, mode: Option<&str>) -> Result<(), Error> {
        match mode {
            Some(mode) => {
                let value = records::encode(
                    tree::META,
                    &RegistrationSetting {
                        mode: mode.to_owned(),
                    },
                )?;
                self.meta.insert(meta::REGISTRATION_MODE, value)?;
            }
            None => {
                self.meta.remove(meta::REGISTRATION_MODE)?;
            }
        }
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::{open_temp, reopen};

    #[test]
    fn registration_mode_is_kept_across_a_restart_and_cleared() {
        let (dir, store) = open_temp();
        assert_eq!(store.registration_mode().unwrap(), None);
        store.set_registration_mode(Some("closed")).unwrap();
        let store = reopen(&dir, store);
        assert_eq!(
            store.registration_mode().unwrap().as_deref(),
            Some("closed")
        );
        store.set_registration_mode(None).unwrap();
        assert_eq!(store.registration_mode().unwrap(), None);
    }
}
