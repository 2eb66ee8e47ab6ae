//! Tag names: every tag this crate sets, encoded and parsed in one place.
//!
//! A tag is a name → hash entry of the iroh-blobs store; a blob that no tag
//! (and no in-flight temporary tag) names is deleted by its GC. Names are
//! bytes; fields are separated by NUL, which no owner, scope or item (ids
//! the node chooses, all printable) contains.
//!
//! - `up/` owner NUL hash NUL secs NUL size → hash: `owner` uploaded the
//!   blob at `secs` (UNIX seconds, 20 digits so names sort by time); its
//!   quota counts `size`. One per (owner, hash): a new upload replaces it.
//! - `ref/` hash NUL scope NUL item → hash: a reference (the node's: a room
//!   and an event) that keeps the blob and lets its readers fetch it.
//! - `meta/` hash → the blob's [`Meta`](crate::Meta) record (postcard).
//! - `thumb/` hash NUL px → a thumbnail of the blob, `px` its longer side.
//! - `cursor/` name NUL seq (20 digits) → the empty blob: how far a
//!   follower of the node's event stream has tagged (one per name).

use iroh_blobs::Hash;

pub const UP: &[u8] = b"up/";
pub const REF: &[u8] = b"ref/";
pub const META: &[u8] = b"meta/";
pub const THUMB: &[u8] = b"thumb/";
pub const CURSOR: &[u8] = b"cursor/";

/// `cursor/name NUL`: the cursor `name`, whatever its position.
pub fn cursor_of(name: &str) -> Vec<u8> {
    let mut tag = join(CURSOR, &[name.as_bytes()]);
    tag.push(0);
    tag
}

pub fn cursor(name: &str, seq: u64) -> Vec<u8> {
    join(CURSOR, &[name.as_bytes(), format!("{seq:020}").as_bytes()])
}

/// The position of a `cursor/` tag of `name`.
pub fn parse_cursor(name: &str, tag: &[u8]) -> Option<u64> {
    let rest = tag.strip_prefix(cursor_of(name).as_slice())?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

fn join(prefix: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let mut name = prefix.to_vec();
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            name.push(0);
        }
        name.extend_from_slice(field);
    }
    name
}

/// `up/owner NUL`: all of one owner's uploads.
pub fn up_owner(owner: &str) -> Vec<u8> {
    let mut name = join(UP, &[owner.as_bytes()]);
    name.push(0);
    name
}

/// `up/owner NUL hash NUL`: one owner's upload of one blob.
pub fn up_owner_hash(owner: &str, hash: &Hash) -> Vec<u8> {
    let mut name = join(UP, &[owner.as_bytes(), hash.to_hex().as_bytes()]);
    name.push(0);
    name
}

pub fn up(owner: &str, hash: &Hash, secs: u64, size: u64) -> Vec<u8> {
    join(
        UP,
        &[
            owner.as_bytes(),
            hash.to_hex().as_bytes(),
            format!("{secs:020}").as_bytes(),
            size.to_string().as_bytes(),
        ],
    )
}

/// An `up/` tag read back.
#[derive(Debug, PartialEq, Eq)]
pub struct Up {
    pub owner: String,
    pub hash: Hash,
    pub secs: u64,
    pub size: u64,
}

pub fn parse_up(name: &[u8]) -> Option<Up> {
    let rest = name.strip_prefix(UP)?;
    let mut fields = rest.split(|b| *b == 0);
    let owner = std::str::from_utf8(fields.next()?).ok()?.to_owned();
    let hash = parse_hash(fields.next()?)?;
    let secs = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    let size = std::str::from_utf8(fields.next()?).ok()?.parse().ok()?;
    fields.next().is_none().then_some(Up {
        owner,
        hash,
        secs,
        size,
    })
}

/// `ref/hash NUL`: every reference to one blob.
pub fn refs_of(hash: &Hash) -> Vec<u8> {
    let mut name = join(REF, &[hash.to_hex().as_bytes()]);
    name.push(0);
    name
}

pub fn reference(hash: &Hash, scope: &str, item: &str) -> Vec<u8> {
    join(
        REF,
        &[hash.to_hex().as_bytes(), scope.as_bytes(), item.as_bytes()],
    )
}

/// A `ref/` tag read back: (hash, scope, item).
pub fn parse_reference(name: &[u8]) -> Option<(Hash, String, String)> {
    let rest = name.strip_prefix(REF)?;
    let mut fields = rest.split(|b| *b == 0);
    let hash = parse_hash(fields.next()?)?;
    let scope = std::str::from_utf8(fields.next()?).ok()?.to_owned();
    let item = std::str::from_utf8(fields.next()?).ok()?.to_owned();
    fields.next().is_none().then_some((hash, scope, item))
}

pub fn meta(hash: &Hash) -> Vec<u8> {
    join(META, &[hash.to_hex().as_bytes()])
}

/// The blob a `meta/` or `thumb/` tag describes.
pub fn described(name: &[u8]) -> Option<Hash> {
    let rest = name
        .strip_prefix(META)
        .or_else(|| name.strip_prefix(THUMB))?;
    parse_hash(rest.split(|b| *b == 0).next()?)
}

pub fn thumb(hash: &Hash, px: u32) -> Vec<u8> {
    join(
        THUMB,
        &[hash.to_hex().as_bytes(), px.to_string().as_bytes()],
    )
}

pub fn parse_hash(hex: &[u8]) -> Option<Hash> {
    let text = std::str::from_utf8(hex).ok()?;
    if text.len() != 64 {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        let hash = Hash::new(b"x");
        let name = up("@a:n", &hash, 7, 42);
        assert!(name.starts_with(&up_owner("@a:n")));
        assert!(name.starts_with(&up_owner_hash("@a:n", &hash)));
        assert_eq!(
            parse_up(&name),
            Some(Up {
                owner: "@a:n".into(),
                hash,
                secs: 7,
                size: 42
            })
        );
        // An owner that is a prefix of another does not list the other's.
        assert!(!up("@a:nn", &hash, 7, 42).starts_with(&up_owner("@a:n")));
        assert!(up("@a:n", &hash, 9, 1) < up("@a:n", &hash, 10, 1));
        let r = reference(&hash, "!room", "$event");
        assert!(r.starts_with(&refs_of(&hash)));
        assert_eq!(
            parse_reference(&r),
            Some((hash, "!room".into(), "$event".into()))
        );
        assert_eq!(described(&meta(&hash)), Some(hash));
        assert_eq!(described(&thumb(&hash, 128)), Some(hash));
        assert_eq!(parse_up(b"up/x"), None);
        assert_eq!(parse_hash(b"zz"), None);
    }
}
