//! The store's one error type.

use sled::transaction::TransactionError;

/// Why a store operation failed.
///
/// Callers react differently to each variant: `AlreadyExists` and `NotFound` are answers to the
/// request, `Corrupt` needs an operator, `Sled` is an I/O failure of the database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed: I/O, a full disk, or sled's own checksums.
    #[error("sled database error")]
    Sled(#[from] sled::Error),

    /// A stored key or value that this version of the store cannot decode.
    ///
    /// `key_hex` is left out where the key itself is a secret (invite tokens).
    #[error(
        "corrupt record in tree `{tree}` at key {key}: {reason}",
        key = .key_hex.as_deref().unwrap_or("(withheld)")
    )]
    Corrupt {
        /// The sled tree that holds the record.
        tree: &'static str,
        /// The record's key in lowercase hex.
        key_hex: Option<String>,
        /// What was wrong with it.
        reason: String,
    },

    /// The data directory holds events in a layout this build does not read (`tree` is one of
    /// its trees). It was written by an older build; there is no migration.
    #[error(
        "the data directory holds events in an older layout (tree `{tree}`); this build cannot read it"
    )]
    OldLayout {
        /// A tree of the old layout that holds data.
        tree: &'static str,
    },

    /// The record to create is already stored.
    #[error("already exists")]
    AlreadyExists,

    /// The record to update is not stored.
    #[error("not found")]
    NotFound,

    /// A record could not be encoded. postcard fails only on types it does not support, so this
    /// is a bug in a record's definition, not bad input.
    #[error("encoding a record for tree `{tree}`")]
    Encode {
        /// The tree the record was meant for.
        tree: &'static str,
        /// postcard's reason.
        #[source]
        source: postcard::Error,
    },
}

impl Error {
    /// A `Corrupt` error that names the record's key.
    pub(crate) fn corrupt(tree: &'static str, key: &[u8], reason: impl Into<String>) -> Self {
        Error::Corrupt {
            tree,
            key_hex: Some(hex(key)),
            reason: reason.into(),
        }
    }
}

/// A transaction aborted by one of our closures carries our own error; anything else is sled's.
impl From<TransactionError<Error>> for Error {
    fn from(error: TransactionError<Error>) -> Self {
        match error {
            TransactionError::Abort(error) => error,
            TransactionError::Storage(error) => Error::Sled(error),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_names_tree_key_and_reason() {
        let error = Error::corrupt("events", &[0x00, 0xab, 0xff], "truncated");
        assert_eq!(
            error.to_string(),
            "corrupt record in tree `events` at key 00abff: truncated"
        );
    }

    #[test]
    fn corrupt_without_key_withholds_it() {
        let error = Error::Corrupt {
            tree: "invites",
            key_hex: None,
            reason: "truncated".into(),
        };
        assert_eq!(
            error.to_string(),
            "corrupt record in tree `invites` at key (withheld): truncated"
        );
    }
}
