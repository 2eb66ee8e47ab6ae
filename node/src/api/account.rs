//! Profiles, settings and contacts: the "user service" of the original
//! diagram, kept in the store.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spaces_blobs::Hash;
use spaces_protocol::UserId;
use spaces_protocol::text::TextKind;
use spaces_store::Profile;

use super::error::{ApiError, ApiResult, Json, Path};
use super::{AppState, Authed};

/// Largest settings document. Settings are preferences, not storage.
const MAX_SETTINGS_BYTES: usize = 64 * 1024;
const MAX_DISPLAY_NAME: usize = 64;
const MAX_BIO: usize = 1024;
/// Contacts per user: an address book, bounded.
const MAX_CONTACTS: usize = 5_000;

#[derive(Serialize)]
pub struct Me {
    user_id: String,
    username: String,
    node_id: String,
    is_admin: bool,
    session_id: String,
}

pub async fn me(State(state): State<AppState>, authed: Authed) -> Json<Me> {
    Json(Me {
        user_id: authed.user.to_string(),
        username: authed.username,
        node_id: state.engine.node_id().to_string(),
        is_admin: authed.admin,
        session_id: authed.session_id,
    })
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    avatar: Option<String>,
    #[serde(default)]
    bio: Option<String>,
}

impl From<Profile> for ProfileBody {
    fn from(p: Profile) -> ProfileBody {
        ProfileBody {
            display_name: p.display_name,
            avatar: p.avatar,
            bio: p.bio,
        }
    }
}

pub async fn get_profile(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<ProfileBody>> {
    Ok(Json(state.store.profile(&authed.username)?.into()))
}

pub async fn put_profile(
    State(state): State<AppState>,
    authed: Authed,
    Json(body): Json<ProfileBody>,
) -> ApiResult<Json<ProfileBody>> {
    // A display name is shown beside everything its user sends: no control,
    // bidirectional or invisible formatting characters (the protocol's rule
    // for names); a bio is prose.
    let check = |value: &Option<String>, max: usize, field: &'static str, kind: TextKind| {
        let Some(v) = value else { return Ok(()) };
        if v.len() > max {
            return Err(ApiError::bad_request(
                "too_long",
                format!("{field} is longer than {max} bytes"),
            ));
        }
        kind.check(field, v)
            .map_err(|e| ApiError::bad_request("bad_text", e.to_string()))
    };
    check(
        &body.display_name,
        MAX_DISPLAY_NAME,
        "display_name",
        TextKind::Name,
    )?;
    check(&body.bio, MAX_BIO, "bio", TextKind::Prose)?;
    // The avatar is an image the user uploaded (or can see): its hash.
    let avatar = match body.avatar.as_deref() {
        None | Some("") => None,
        Some(text) => Some(parse_hash(text)?),
    };
    let profile = Profile {
        display_name: body.display_name.filter(|s| !s.is_empty()),
        avatar: avatar.map(|hash| hash.to_hex().to_string()),
        bio: body.bio.filter(|s| !s.is_empty()),
    };
    state
        .media
        .put_profile(
            &state.accounts,
            &authed.user,
            authed.username,
            profile.clone(),
            avatar,
        )
        .await?;
    Ok(Json(profile.into()))
}

pub async fn user_profile(
    State(state): State<AppState>,
    _authed: Authed,
    Path(user_id): Path<String>,
) -> ApiResult<Json<ProfileBody>> {
    let user = parse_user(&user_id)?;
    if !state.engine.is_local(&user) || state.store.account(user.localpart())?.is_none() {
        return Err(ApiError::not_found(
            "unknown_user",
            "no such user on this node",
        ));
    }
    Ok(Json(state.store.profile(user.localpart())?.into()))
}

pub async fn get_settings(State(state): State<AppState>, authed: Authed) -> ApiResult<Json<Value>> {
    let Some(bytes) = state.store.settings(&authed.username)? else {
        return Ok(Json(Value::Object(Default::default())));
    };
    serde_json::from_slice(&bytes)
        .map(Json)
        .map_err(ApiError::internal)
}

pub async fn put_settings(
    State(state): State<AppState>,
    authed: Authed,
    Json(settings): Json<Value>,
) -> ApiResult<Json<Value>> {
    if !settings.is_object() {
        return Err(ApiError::bad_request(
            "bad_value",
            "settings must be a JSON object",
        ));
    }
    let bytes = serde_json::to_vec(&settings).map_err(ApiError::internal)?;
    if bytes.len() > MAX_SETTINGS_BYTES {
        return Err(ApiError::bad_request(
            "too_long",
            format!("settings are limited to {MAX_SETTINGS_BYTES} bytes"),
        ));
    }
    state.accounts.put_settings(authed.username, bytes).await?;
    Ok(Json(settings))
}

pub async fn contacts(
    State(state): State<AppState>,
    authed: Authed,
) -> ApiResult<Json<Vec<String>>> {
    Ok(Json(state.store.contacts(&authed.username)?))
}

pub async fn add_contact(
    State(state): State<AppState>,
    authed: Authed,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = parse_user(&user_id)?;
    if user == authed.user {
        return Err(ApiError::bad_request(
            "bad_value",
            "you are always your own contact",
        ));
    }
    if state.store.contacts(&authed.username)?.len() >= MAX_CONTACTS {
        return Err(ApiError::bad_request(
            "too_many",
            format!("at most {MAX_CONTACTS} contacts"),
        ));
    }
    state
        .accounts
        .add_contact(authed.username, user.to_string())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_contact(
    State(state): State<AppState>,
    authed: Authed,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    let user = parse_user(&user_id)?;
    if state
        .accounts
        .remove_contact(authed.username, user.to_string())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(
            "unknown_contact",
            "not in your contacts",
        ))
    }
}

pub fn parse_user(text: &str) -> ApiResult<UserId> {
    text.parse().map_err(|e| {
        ApiError::bad_request("bad_user_id", format!("{text:?} is not a user id: {e}"))
    })
}

/// A hash as the API writes it: 64 lowercase hex digits.
pub fn parse_hash(text: &str) -> ApiResult<Hash> {
    let bad = || {
        ApiError::bad_request(
            "bad_hash",
            format!("{text:?} is not a BLAKE3 hash (64 hex digits)"),
        )
    };
    if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    text.to_ascii_lowercase().parse().map_err(|_| bad())
}
