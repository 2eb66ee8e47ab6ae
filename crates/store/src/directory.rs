//! Finding local users by the start of their username or by their display name, for a user
//! search. Bounded: a query reads at most `max_scanned` profile records besides the username
//! prefix range, however many accounts the node has.

use crate::keys::{self, tree};
use crate::records::{self, Account, Profile};
use crate::{Error, Store};

/// One user found: the username as chosen, and the display name if set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundUser {
    pub username: String,
    pub display_name: Option<String>,
}

impl Store {
    /// Enabled local users whose username starts with `query` (ignoring case), in username
    /// order, then those whose display name contains it (ignoring case), among the first
    /// `max_scanned` profiles; at most `limit` in all. An empty query finds nobody.
    pub fn find_users(
        &self,
        query: &str,
        limit: usize,
        max_scanned: usize,
    ) -> Result<Vec<FoundUser>, Error> {
        let wanted = query.trim().to_lowercase();
        let mut found: Vec<FoundUser> = Vec::new();
        if wanted.is_empty() || limit == 0 {
            return Ok(found);
        }
        for entry in self.accounts.scan_prefix(keys::username(&wanted)) {
            if found.len() >= limit {
                return Ok(found);
            }
            let (key, value) = entry?;
            let account: Account = records::decode(tree::ACCOUNTS, &key, &value)?;
            if account.disabled {
                continue;
            }
            let display_name = self.profile(&account.username)?.display_name;
            found.push(FoundUser {
                username: account.username,
                display_name,
            });
        }
        for entry in self.profiles.iter().take(max_scanned) {
            if found.len() >= limit {
                break;
            }
            let (key, value) = entry?;
            let profile: Profile = records::decode(tree::PROFILES, &key, &value)?;
            let Some(name) = profile.display_name else {
                continue;
            };
            if !name.to_lowercase().contains(&wanted) {
                continue;
            }
            let lowered = String::from_utf8_lossy(&key);
            if found.iter().any(|f| f.username.to_lowercase() == lowered) {
                continue;
            }
            let Some(account) = self.account(&lowered)? else {
                continue;
            };
            if account.disabled {
                continue;
            }
            found.push(FoundUser {
                username: account.username,
                display_name: Some(name),
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::open_temp;

    use super::*;

    fn account(name: &str, disabled: bool) -> Account {
        Account {
            username: name.to_owned(),
            password_hash: String::new(),
            created_at_ms: 0,
            is_admin: false,
            disabled,
            moderator: false,
            suspended: false,
        }
    }

    #[test]
    fn by_username_prefix_then_display_name() {
        let (_dir, store) = open_temp();
        for (name, disabled) in [
            ("Alice", false),
            ("alfred", false),
            ("bob", false),
            ("albert", true),
        ] {
            store.create_account(&account(name, disabled)).unwrap();
        }
        let named = |display: &str| Profile {
            display_name: Some(display.to_owned()),
            avatar: None,
            bio: None,
        };
        store
            .put_profile("bob", &named("Bob the Allotment Keeper"))
            .unwrap();
        store.put_profile("albert", &named("Al")).unwrap();
        let names =
            |found: Vec<FoundUser>| found.into_iter().map(|f| f.username).collect::<Vec<_>>();
        assert_eq!(
            names(store.find_users("AL", 10, 100).unwrap()),
            ["alfred", "Alice", "bob"]
        );
        assert_eq!(names(store.find_users("al", 1, 100).unwrap()), ["alfred"]);
        assert_eq!(names(store.find_users("allot", 10, 100).unwrap()), ["bob"]);
        assert_eq!(
            names(store.find_users("allot", 10, 0).unwrap()),
            Vec::<String>::new()
        );
        assert_eq!(
            names(store.find_users("  ", 10, 100).unwrap()),
            Vec::<String>::new()
        );
    }
}
