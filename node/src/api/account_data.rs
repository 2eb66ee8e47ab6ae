//! A user's own data (issue 19): `GET /api/v1/account/export`, an archive
//! of it, and `DELETE /api/v1/account`, the account's end
//! (docs/spec/api.md, "Account export and deletion").
//!
//! The export is a POSIX tar (ustar) stream: `services::export` hands over
//! its parts one at a time, each is rendered here as JSON (the API's own
//! shapes) and as HTML a person can open, and written as tar entries of
//! their own, so nothing needs the whole archive's size in advance and
//! memory stays one page of messages. The last entry is `index.html`,
//! which links every page; the archive ends with tar's two zero blocks, so
//! an archive cut short by an error is visibly incomplete.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use spaces_protocol::UserId;

use super::error::{ApiError, ApiResult, Json};
use super::rooms::rate;
use super::{AppState, Authed, render};
use crate::engine::now_ms;
use crate::services::erasure::{self, ErasureError};
use crate::services::export::{self, ExportError, Part};

/// The directory every entry of an export sits in.
const ROOT: &str = "spaces-export";

impl From<ErasureError> for ApiError {
    fn from(error: ErasureError) -> ApiError {
        match error {
            ErasureError::Gone => ApiError::unauthorized("session_revoked", "the account is gone"),
            ErasureError::Media(media) => media.into(),
            ErasureError::Store(store) => store.into(),
        }
    }
}

/// A tar header for a regular file of `size` bytes (ustar: the name in
/// `prefix`/`name` when longer than 100 bytes).
fn tar_header(path: &str, size: u64, mtime_secs: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let (prefix, name) = if path.len() <= 100 {
        ("", path)
    } else {
        // Split at the first '/' after which the name fits; export paths
        // (a root, a room id and a file name) always have one.
        let at = path
            .match_indices('/')
            .map(|(i, _)| i)
            .find(|i| path.len() - i - 1 <= 100)
            .unwrap_or(0);
        (&path[..at], &path[at + 1..])
    };
    let put = |h: &mut [u8; 512], at: usize, len: usize, bytes: &[u8]| {
        let n = bytes.len().min(len);
        h[at..at + n].copy_from_slice(&bytes[..n]);
    };
    put(&mut h, 0, 100, name.as_bytes());
    put(&mut h, 100, 8, b"0000644\0");
    put(&mut h, 108, 8, b"0000000\0");
    put(&mut h, 116, 8, b"0000000\0");
    put(&mut h, 124, 12, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, 12, format!("{mtime_secs:011o}\0").as_bytes());
    put(&mut h, 148, 8, b"        ");
    h[156] = b'0';
    put(&mut h, 257, 6, b"ustar\0");
    put(&mut h, 263, 2, b"00");
    put(&mut h, 345, 155, prefix.as_bytes());
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    h
}

/// One file of the archive: header, bytes, padding to 512.
fn tar_entry(out: &mut Vec<u8>, path: &str, data: &[u8], mtime_secs: u64) {
    out.extend_from_slice(&tar_header(
        &format!("{ROOT}/{path}"),
        data.len() as u64,
        mtime_secs,
    ));
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

/// Text for HTML: the five characters that matter, escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page of the export's HTML: no script, no style sheet from outside.
fn html(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <title>{}</title><style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}\
         .m{{border-bottom:1px solid #ddd;padding:.5em 0}}.t{{color:#666;font-size:.8em}}\
         pre{{white-space:pre-wrap}}</style></head><body>\n<h1>{}</h1>\n{body}\n</body></html>\n",
        escape(title),
        escape(title)
    )
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Renders parts into tar bytes, and remembers what `index.html` lists.
struct Archive {
    user: UserId,
    node_id: String,
    mtime_secs: u64,
    /// The account's summary, for the index.
    summary: String,
    /// Per room: (id, name, membership, pages).
    rooms: Vec<(String, Option<String>, &'static str, usize)>,
}

impl Archive {
    fn part(&mut self, part: Part) -> Vec<u8> {
        let mut out = Vec::new();
        let t = self.mtime_secs;
        match part {
            Part::Account {
                user,
                account,
                profile,
                settings,
                contacts,
            } => {
                let account = json!({
                    "user_id": user.to_string(),
                    "username": account.username,
                    "node_id": self.node_id,
                    "created_at_ms": account.created_at_ms,
                    "is_admin": account.is_admin,
                    "exported_at_ms": now_ms(),
                });
                let profile = json!({
                    "display_name": profile.display_name,
                    "avatar": profile.avatar,
                    "bio": profile.bio,
                });
                let settings: Value = settings
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                    .unwrap_or_else(|| json!({}));
                let contacts = json!(contacts);
                tar_entry(&mut out, "account.json", &pretty(&account), t);
                tar_entry(&mut out, "profile.json", &pretty(&profile), t);
                tar_entry(&mut out, "settings.json", &pretty(&settings), t);
                tar_entry(&mut out, "contacts.json", &pretty(&contacts), t);
                self.summary = format!(
                    "<h2>Account</h2><pre>{}</pre><h2>Profile</h2><pre>{}</pre>\
                     <h2>Settings</h2><pre>{}</pre><h2>Contacts</h2><pre>{}</pre>",
                    escape(&String::from_utf8_lossy(&pretty(&account))),
                    escape(&String::from_utf8_lossy(&pretty(&profile))),
                    escape(&String::from_utf8_lossy(&pretty(&settings))),
                    escape(&String::from_utf8_lossy(&pretty(&contacts))),
                );
            }
            Part::Room {
                room_id,
                name,
                topic,
                membership,
            } => {
                let room = json!({
                    "room_id": room_id.to_string(),
                    "name": name,
                    "topic": topic,
                    "membership": render::membership(membership),
                });
                tar_entry(
                    &mut out,
                    &format!("rooms/{room_id}/room.json"),
                    &pretty(&room),
                    t,
                );
                self.rooms
                    .push((room_id.to_string(), name, render::membership(membership), 0));
            }
            Part::Messages {
                room_id,
                page,
                events,
            } => {
                let rendered: Vec<Value> = events
                    .iter()
                    .map(|shown| render::event(&shown.event, shown.notes.as_ref(), &self.user))
                    .collect();
                let mut body = String::new();
                for value in &rendered {
                    let content = &value["content"];
                    let files: Vec<String> = content["attachments"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|f| {
                                    format!(
                                        "{} ({} bytes, {})",
                                        f["name"].as_str().unwrap_or(""),
                                        f["size"],
                                        f["hash"].as_str().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    body.push_str(&format!(
                        "<div class=\"m\"><div class=\"t\">{} · {}{}</div><pre>{}</pre>{}</div>\n",
                        value["origin_ts"],
                        escape(value["event_id"].as_str().unwrap_or("")),
                        if value["redacted"] == true {
                            " · redacted"
                        } else {
                            ""
                        },
                        escape(
                            value["edited"]["body"]
                                .as_str()
                                .or(content["body"].as_str())
                                .unwrap_or("")
                        ),
                        files
                            .iter()
                            .map(|f| format!("<div class=\"t\">file: {}</div>", escape(f)))
                            .collect::<String>(),
                    ));
                }
                let stem = format!("rooms/{room_id}/messages-{page:04}");
                tar_entry(
                    &mut out,
                    &format!("{stem}.json"),
                    &pretty(&json!(rendered)),
                    t,
                );
                let title = format!("Your messages in {room_id}, page {page}");
                tar_entry(
                    &mut out,
                    &format!("{stem}.html"),
                    html(&title, &body).as_bytes(),
                    t,
                );
                if let Some(room) = self
                    .rooms
                    .iter_mut()
                    .rev()
                    .find(|r| r.0 == room_id.to_string())
                {
                    room.3 = page;
                }
            }
        }
        out
    }

    /// `index.html` and the end of the archive.
    fn finish(&self) -> Vec<u8> {
        let mut rooms = String::from("<h2>Rooms</h2><ul>");
        for (id, name, membership, pages) in &self.rooms {
            rooms.push_str(&format!(
                "<li>{} <span class=\"t\">{} · {}</span>",
                escape(name.as_deref().unwrap_or("(no name)")),
                escape(id),
                membership
            ));
            for page in 1..=*pages {
                rooms.push_str(&format!(
                    " <a href=\"rooms/{}/messages-{page:04}.html\">page {page}</a>",
                    escape(id)
                ));
            }
            rooms.push_str("</li>");
        }
        rooms.push_str("</ul>");
        let title = format!("Spaces export of {}", self.user);
        let mut out = Vec::new();
        tar_entry(
            &mut out,
            "index.html",
            html(&title, &format!("{}{rooms}", self.summary)).as_bytes(),
            self.mtime_secs,
        );
        out.extend_from_slice(&[0u8; 1024]);
        out
    }
}

pub async fn export(State(state): State<AppState>, authed: Authed) -> ApiResult<Response> {
    rate(&state, &authed)?;
    let parts = export::start(
        state.engine.clone(),
        authed.user.clone(),
        authed.username.clone(),
    );
    let archive = Archive {
        user: authed.user.clone(),
        node_id: state.engine.node_id().to_string(),
        mtime_secs: now_ms() / 1000,
        summary: String::new(),
        rooms: Vec::new(),
    };
    let chunks = futures_util::stream::unfold(Some((parts, archive)), |next| async move {
        let (mut parts, mut archive) = next?;
        match parts.recv().await {
            Some(Ok(part)) => {
                let bytes = archive.part(part);
                Some((Ok(bytes::Bytes::from(bytes)), Some((parts, archive))))
            }
            None => Some((Ok(bytes::Bytes::from(archive.finish())), None)),
            Some(Err(error)) => {
                tracing::warn!(%error, "account export failed");
                Some((Err::<bytes::Bytes, ExportError>(error), None))
            }
        }
    });
    let filename = format!(
        "attachment; filename=\"spaces-export-{}.tar\"",
        authed
            .username
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
    );
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/x-tar".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    password: String,
}

pub async fn delete(
    State(state): State<AppState>,
    authed: Authed,
    Json(req): Json<DeleteAccount>,
) -> ApiResult<StatusCode> {
    rate(&state, &authed)?;
    let account = state.store.account(&authed.username)?;
    let phc = account.map(|a| a.password_hash);
    if !state.hasher.verify(phc, req.password).await {
        return Err(ApiError::forbidden(
            "bad_password",
            "the password does not match: nothing was deleted",
        ));
    }
    let deleted = erasure::delete_account(
        &state.engine,
        &state.accounts,
        &state.media,
        &authed.user,
        authed.username.clone(),
        erasure::Policy {
            redact_messages: state.config.accounts.deleted_messages
                == crate::config::DeletedMessages::Redact,
        },
    )
    .await?;
    tracing::info!(
        user = %authed.user,
        sessions = deleted.sessions,
        rooms_left = deleted.rooms_left,
        redacted = deleted.messages_redacted,
        "account deleted"
    );
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_carry_a_valid_checksum_and_long_names_split() {
        let h = tar_header("spaces-export/account.json", 10, 0);
        let stored = std::str::from_utf8(&h[148..154]).unwrap();
        let mut blank = h;
        blank[148..156].copy_from_slice(b"        ");
        let sum: u32 = blank.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
        assert_eq!(&h[124..136], b"00000000012\0");
        let long = format!("spaces-export/rooms/{}/messages-0001.html", "r".repeat(90));
        let h = tar_header(&long, 1, 0);
        let name = std::str::from_utf8(&h[..100])
            .unwrap()
            .trim_end_matches('\0');
        let prefix = std::str::from_utf8(&h[345..500])
            .unwrap()
            .trim_end_matches('\0');
        assert_eq!(format!("{prefix}/{name}"), long);
        assert!(name.len() <= 100);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
