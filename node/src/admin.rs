//! Operator commands on a data directory: create users, reset passwords,
//! list users and rooms, mint invite tokens, report the media store. They open the store directly,
//! so the node must be stopped (sled allows one process at a time, and says
//! so if another holds it).

use anyhow::{Context, bail};
use spaces_protocol::content::Content;
use spaces_protocol::{Event, RoomId, UserId};
use spaces_store::{Account, InviteToken};

use crate::data_dir::DataDir;
use crate::engine::now_ms;

pub fn create_user(
    dir: &DataDir,
    username: &str,
    password: &str,
    admin: bool,
) -> anyhow::Result<UserId> {
    let username = username.to_lowercase();
    let user = UserId::new(&username, dir.node_key.node_id()).context("invalid username")?;
    spaces_auth::check_password_policy(password)?;
    let store = dir.open_store()?;
    let hash = spaces_auth::hash_password(password, &mut rand::rng())?;
    let account = Account {
        username,
        password_hash: hash,
        created_at_ms: now_ms(),
        is_admin: admin,
        disabled: false,
    };
    match store.create_account(&account) {
        Err(spaces_store::Error::AlreadyExists) => bail!("user {user} already exists"),
        other => other?,
    }
    Ok(user)
}

pub fn reset_password(dir: &DataDir, username: &str, password: &str) -> anyhow::Result<()> {
    spaces_auth::check_password_policy(password)?;
    let store = dir.open_store()?;
    let mut account = store
        .account(&username.to_lowercase())?
        .with_context(|| format!("no user {username}"))?;
    account.password_hash = spaces_auth::hash_password(password, &mut rand::rng())?;
    store.update_account(&account)?;
    // A reset password ends every session: whoever knew the old one is out.
    for session in store.sessions_of(&account.username)? {
        store.delete_session(&session.id)?;
    }
    Ok(())
}

pub fn list_users(dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let store = dir.open_store()?;
    let node = dir.node_key.node_id();
    Ok(store
        .accounts()?
        .into_iter()
        .map(|a| {
            format!(
                "@{}:{node}{}{}",
                a.username,
                if a.is_admin { "  admin" } else { "" },
                if a.disabled { "  disabled" } else { "" }
            )
        })
        .collect())
}

pub fn list_rooms(dir: &DataDir) -> anyhow::Result<Vec<String>> {
    let store = dir.open_store()?;
    // One pass over the log; rooms listed in id order.
    let mut rooms: std::collections::BTreeMap<RoomId, (usize, Option<String>)> = Default::default();
    for stored in store.events() {
        let stored = stored?;
        let (n_events, name) = rooms.entry(RoomId(stored.room_id)).or_default();
        *n_events += 1;
        if let Ok(event) = Event::decode_trusted(&stored.bytes)
            && let Content::Name(n) = event.content()
        {
            *name = Some(n.clone());
        }
    }
    Ok(rooms
        .into_iter()
        .map(|(room_id, (n_events, name))| {
            format!(
                "{room_id}  {n_events} events  {}",
                name.unwrap_or_else(|| "(unnamed)".into())
            )
        })
        .collect())
}

pub fn invite_token(
    dir: &DataDir,
    uses: u32,
    expires_in_secs: Option<u64>,
) -> anyhow::Result<String> {
    let store = dir.open_store()?;
    let token = spaces_auth::new_invite_token(&mut rand::rng());
    store.put_invite_token(&InviteToken {
        token: token.clone(),
        uses_left: uses,
        expires_at_ms: expires_in_secs.map(|s| now_ms() + s * 1000),
        created_by: "admin".into(),
    })?;
    Ok(token)
}

/// What the media store holds: blobs (files, thumbnails and records) and
/// their bytes, kept uploads and references.
pub fn media_stats(dir: &DataDir, media: &crate::config::MediaConfig) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a runtime for the media store")?;
    let options = media.options(dir.path.join("blobs"));
    runtime.block_on(async {
        let blobs = spaces_blobs::Blobs::open(options)
            .await
            .context("opening the media store")?;
        let stats = blobs.stats().await;
        blobs.shutdown().await;
        let stats = stats.context("reading the media store")?;
        Ok(format!(
            "{} blobs, {} bytes; {} uploads kept, {} references",
            stats.blobs, stats.bytes, stats.uploads, stats.references
        ))
    })
}
