//! Email (`/api/v1/account/email`, `/api/v1/account/password/reset`): a
//! real node sends through a real SMTP server on 127.0.0.1, and the tests
//! read what it received. With `SPACES_EMAIL_PYTHON` naming a Python with
//! aiosmtpd (scripts/email-e2e.sh installs it), the server is
//! scripts/email-sink.py, an implementation nobody here wrote; without it,
//! a minimal SMTP receiver in this file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::federation::until;
use crate::support::{Node, PASSWORD, User, data_dir};

/// An SMTP server on 127.0.0.1 that writes each message it takes to
/// `dir/NNNNNN.eml`.
struct Sink {
    port: u16,
    dir: tempfile::TempDir,
    /// The aiosmtpd process, if that is the server (killed on drop).
    _child: Option<tokio::process::Child>,
}

impl Sink {
    async fn start() -> Sink {
        let dir = tempfile::tempdir().unwrap();
        match std::env::var_os("SPACES_EMAIL_PYTHON") {
            Some(python) => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/email-sink.py");
                let mut child = tokio::process::Command::new(python)
                    .arg(script)
                    .arg(dir.path())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .expect("starting scripts/email-sink.py");
                let stdout = child.stdout.take().unwrap();
                let mut line = String::new();
                tokio::time::timeout(
                    Duration::from_secs(30),
                    BufReader::new(stdout).read_line(&mut line),
                )
                .await
                .expect("aiosmtpd did not print its port")
                .unwrap();
                let port = line.trim().parse().expect("a port on the first line");
                Sink {
                    port,
                    dir,
                    _child: Some(child),
                }
            }
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let port = listener.local_addr().unwrap().port();
                let out = dir.path().to_owned();
                tokio::spawn(async move {
                    let mut n = 0;
                    while let Ok((stream, _)) = listener.accept().await {
                        n = minimal_smtp(stream, &out, n).await;
                    }
                });
                Sink {
                    port,
                    dir,
                    _child: None,
                }
            }
        }
    }

    /// The node's email settings pointing at this server.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SPACES__EMAIL__SMTP_HOST", "127.0.0.1".into()),
            ("SPACES__EMAIL__SMTP_PORT", self.port.to_string()),
            ("SPACES__EMAIL__SECURITY", "none".into()),
            ("SPACES__EMAIL__FROM", "Spaces <spaces@node.test>".into()),
            ("SPACES__EMAIL__DIGEST_DELAY_SECS", "1".into()),
            ("SPACES__EMAIL__DIGEST_PERIOD_SECS", "3600".into()),
        ]
    }

    /// Every message received so far, in order.
    fn mails(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned())
            .collect()
    }

    /// Waits for the `n`th (from 1) message to `to` whose subject contains
    /// `subject`.
    async fn nth(&self, n: usize, to: &str, subject: &str) -> String {
        until(&format!("mail #{n} to {to} about {subject:?}"), || {
            let found: Vec<String> = self
                .mails()
                .into_iter()
                .filter(|mail| recipient(mail) == to && header(mail, "Subject").contains(subject))
                .collect();
            async move { found.into_iter().nth(n - 1) }
        })
        .await
    }

    fn count(&self, to: &str, subject: &str) -> usize {
        self.mails()
            .iter()
            .filter(|mail| recipient(mail) == to && header(mail, "Subject").contains(subject))
            .count()
    }
}

/// Serves one SMTP session (RFC 5321's happy path: what lettre sends) and
/// writes its messages from number `n`; the next free number.
async fn minimal_smtp(stream: tokio::net::TcpStream, out: &Path, mut n: usize) -> usize {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let mut rcpt = Vec::new();
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return n;
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") || command.starts_with("HELO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if command.starts_with("RCPT TO:") {
            let to = line.trim_end()[8..].trim_matches(|c| c == '<' || c == '>' || c == ' ');
            rcpt.push(to.to_owned());
            b"250 OK\r\n"
        } else if command.starts_with("DATA") {
            let _ = write.write_all(b"354 go on\r\n").await;
            let mut message = format!("X-Envelope-To: {}\r\n", rcpt.join(","));
            loop {
                let mut data = String::new();
                if lines.read_line(&mut data).await.unwrap_or(0) == 0 {
                    return n;
                }
                if data == ".\r\n" {
                    break;
                }
                message.push_str(data.strip_prefix('.').unwrap_or(&data));
            }
            let temporary = out.join(format!(".{n:06}.tmp"));
            std::fs::write(&temporary, message).unwrap();
            std::fs::rename(&temporary, out.join(format!("{n:06}.eml"))).unwrap();
            n += 1;
            rcpt.clear();
            b"250 OK\r\n"
        } else if command.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return n;
        } else {
            b"250 OK\r\n"
        };
        let _ = write.write_all(reply).await;
    }
}

/// A header's value (unfolded).
fn header(mail: &str, name: &str) -> String {
    let head = mail.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default()
}

fn recipient(mail: &str) -> String {
    header(mail, "X-Envelope-To")
}

/// The body, with soft line breaks and `=XX` of quoted-printable undone
/// when the mail is encoded so.
fn body(mail: &str) -> String {
    let body = mail.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    if !header(mail, "Content-Transfer-Encoding").eq_ignore_ascii_case("quoted-printable") {
        return body.replace("\r\n", "\n");
    }
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::new();
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && let Some(hex) = joined.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace("\r\n", "\n")
}

/// The path (and query) of the first link in `text` that contains `part`.
fn link(text: &str, part: &str) -> String {
    let url = text
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.contains(part))
        .unwrap_or_else(|| panic!("no link with {part} in:\n{text}"));
    let after_scheme = url.split_once("://").unwrap().1;
    let path = &after_scheme[after_scheme.find('/').unwrap()..];
    path.trim_end_matches('>').to_owned()
}

/// Changes one character of the token in `path` (in its MAC, the last part).
fn tamper(path: &str) -> String {
    let mut chars: Vec<char> = path.chars().collect();
    let i = chars.len() - 3;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Sets and verifies `user`'s address through the verification mail.
async fn verified(node: &Node, sink: &Sink, user: &User, address: &str) {
    let set = node
        .put(
            "/api/v1/account/email",
            Some(&user.access),
            json!({ "address": address }),
        )
        .await
        .expect(202);
    assert_eq!(set["verified"], false);
    let mail = sink.nth(1, address, "Confirm your email address").await;
    let path = link(&body(&mail), "/api/v1/account/email/verify");
    let page = node.get(&path, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Address confirmed"));
    let state = node
        .get("/api/v1/account/email", Some(&user.access))
        .await
        .expect(200);
    assert_eq!(state["verified"], true);
}

async fn send(node: &Node, user: &User, room: &str, body: serde_json::Value) -> String {
    node.post(
        &format!("/api/v1/rooms/{room}/messages"),
        Some(&user.access),
        body,
    )
    .await
    .expect(201)["event_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The verification mail arrives and its link verifies (a changed link is
/// refused and changes nothing); the digest arrives with the unread
/// mentions and direct messages — not plain messages, not a redacted one,
/// not those of a room the user left — once in its period; its one-click
/// unsubscribe works, a tampered one does not.
#[tokio::test]
async fn verification_digest_and_one_click_unsubscribe() {
    let sink = Sink::start().await;
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = data_dir();
    let node = Node::start(dir.path(), &env).await;
    let al = node.register("al").await;
    let bo = node.register("bo").await;

    // Nothing yet.
    let none = node
        .get("/api/v1/account/email", Some(&al.access))
        .await
        .expect(200);
    assert_eq!(none["address"], serde_json::Value::Null);
    node.put(
        "/api/v1/account/email",
        Some(&al.access),
        json!({ "address": "not an address" }),
    )
    .await
    .error(400, "bad_address");

    // A tampered verification link is refused and verifies nothing.
    node.put(
        "/api/v1/account/email",
        Some(&al.access),
        json!({ "address": "al@example.org" }),
    )
    .await
    .expect(202);
    let mail = sink
        .nth(1, "al@example.org", "Confirm your email address")
        .await;
    let path = link(&body(&mail), "/api/v1/account/email/verify");
    node.get(&tamper(&path), None).await.error(400, "bad_link");
    let token = path.split_once("token=").unwrap().1.to_owned();
    node.post(
        "/api/v1/account/email/verify",
        None,
        json!({ "token": tamper(&token) }),
    )
    .await
    .error(400, "bad_link");
    let state = node
        .get("/api/v1/account/email", Some(&al.access))
        .await
        .expect(200);
    assert_eq!(state["verified"], false);

    // bo's room with al, a DM, and a room al leaves.
    let room = node
        .create_room(&bo, json!({ "name": "ops", "visibility": "public" }))
        .await;
    node.join(&al, &room).await;
    let gone = node
        .create_room(&bo, json!({ "name": "gone", "visibility": "public" }))
        .await;
    node.join(&al, &gone).await;
    let dm = node
        .post("/api/v1/dms", Some(&bo.access), json!({ "user_id": al.id }))
        .await
        .expect(201)["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    node.join(&al, &dm).await;
    let mention = |text: &str| json!({ "body": text, "mentions": { "users": [al.id] } });
    send(&node, &bo, &room, json!({ "body": "plain chatter" })).await;
    send(&node, &bo, &room, mention("deploy at noon, al?")).await;
    let redacted = send(&node, &bo, &room, mention("oops wrong person")).await;
    node.delete(
        &format!("/api/v1/rooms/{room}/messages/{redacted}"),
        Some(&bo.access),
    )
    .await
    .expect(204);
    send(&node, &bo, &gone, mention("in the room you left")).await;
    node.post(
        &format!("/api/v1/rooms/{gone}/leave"),
        Some(&al.access),
        json!({}),
    )
    .await
    .expect(200);
    send(&node, &bo, &dm, json!({ "body": "psst, lunch?" })).await;

    // The notifier has handled everything up to the DM (it goes in order).
    until("al's notifications include the DM", || {
        let node = &node;
        let access = al.access.clone();
        async move {
            let list = node
                .get("/api/v1/notifications", Some(&access))
                .await
                .expect(200);
            list["notifications"]
                .as_array()?
                .iter()
                .any(|n| n["excerpt"] == "psst, lunch?")
                .then_some(())
        }
    })
    .await;
    // The real link verifies (a client may POST it too); digests start
    // with what is waiting.
    let verified_now = node
        .post(
            "/api/v1/account/email/verify",
            None,
            json!({ "token": token }),
        )
        .await
        .expect(200);
    assert_eq!(
        verified_now,
        json!({ "address": "al@example.org", "verified": true, "digests": true })
    );
    let digest = sink.nth(1, "al@example.org", "unread message").await;
    let text = body(&digest);
    assert!(text.contains("deploy at noon, al?"), "{text}");
    assert!(text.contains("psst, lunch?"), "{text}");
    assert!(text.contains("(direct message)"), "{text}");
    assert!(text.contains("in ops:"), "{text}");
    for absent in ["plain chatter", "oops wrong person", "in the room you left"] {
        assert!(!text.contains(absent), "{absent} in:\n{text}");
    }
    assert_eq!(
        header(&digest, "Subject"),
        "2 unread messages for you on Spaces"
    );
    let room_link = link(&text, "/room/");
    assert!(room_link.starts_with("/room/%21"), "{room_link}");
    assert_eq!(
        header(&digest, "List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    let unsubscribe = link(
        &header(&digest, "List-Unsubscribe").replace(['<', '>'], " "),
        "unsubscribe",
    );
    assert_eq!(
        unsubscribe,
        link(&text, "/api/v1/account/email/unsubscribe")
    );

    // Once per period: a new mention is looked at and put off, not sent.
    let deferred = node.metric("spaces_email_digests_deferred_total").await;
    send(&node, &bo, &room, mention("second mention")).await;
    until("the mailer put the second digest off", || {
        let node = &node;
        async move {
            (node.metric("spaces_email_digests_deferred_total").await > deferred).then_some(())
        }
    })
    .await;
    assert_eq!(sink.count("al@example.org", "unread message"), 1);
    assert_eq!(node.metric("spaces_email_digests_queued_total").await, 1);

    // A tampered unsubscribe link is refused, by GET and POST, and changes nothing.
    let one_click = |path: String| {
        node.raw(
            Method::POST,
            &path,
            None,
            Some("application/x-www-form-urlencoded"),
            b"List-Unsubscribe=One-Click".to_vec(),
        )
    };
    node.get(&tamper(&unsubscribe), None)
        .await
        .error(400, "bad_link");
    one_click(tamper(&unsubscribe)).await.error(400, "bad_link");
    // Opening the link shows a button; it does not unsubscribe by itself.
    let page = node.get(&unsubscribe, None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<form method=\"post\""), "{}", page.text);
    let state = node
        .get("/api/v1/account/email", Some(&al.access))
        .await
        .expect(200);
    assert_eq!(state["digests"], true);
    // The one-click POST (RFC 8058) turns digests off.
    let done = one_click(unsubscribe.clone()).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let state = node
        .get("/api/v1/account/email", Some(&al.access))
        .await
        .expect(200);
    assert_eq!(
        state,
        json!({ "address": "al@example.org", "verified": true, "digests": false })
    );
    // And back on from the settings.
    let on = node
        .patch(
            "/api/v1/account/email",
            Some(&al.access),
            json!({ "digests": true }),
        )
        .await
        .expect(200);
    assert_eq!(on["digests"], true);
    node.delete("/api/v1/account/email", Some(&al.access))
        .await
        .expect(204);
    node.delete("/api/v1/account/email", Some(&al.access))
        .await
        .error(404, "no_address");
}

/// A reset mail arrives for an account with a verified address (asked by
/// username or by address); the answer is the same for an account that does
/// not exist; its token sets a new password once and ends every session.
/// Verification mails are limited per account.
#[tokio::test]
async fn password_reset_by_mail_and_limits() {
    let sink = Sink::start().await;
    let env = sink.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = data_dir();
    let node = Node::start(dir.path(), &env).await;
    let al = node.register("al").await;
    verified(&node, &sink, &al, "al@example.org").await;

    let asked = node
        .post(
            "/api/v1/account/password/reset",
            None,
            json!({ "username": "al" }),
        )
        .await
        .expect(202);
    let nobody = node
        .post(
            "/api/v1/account/password/reset",
            None,
            json!({ "username": "nobody" }),
        )
        .await
        .expect(202);
    assert_eq!(asked, nobody);
    node.post(
        "/api/v1/account/password/reset",
        None,
        json!({ "username": "al", "email": "al@example.org" }),
    )
    .await
    .error(400, "bad_value");
    let mail = sink
        .nth(1, "al@example.org", "Reset your Spaces password")
        .await;
    let text = body(&mail);
    let token = text
        .split("enter this code: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
        .to_owned();
    assert!(link(&text, "/reset-password?token=").ends_with(&token));

    let confirm = |token: &str, password: &str| {
        node.post(
            "/api/v1/account/password/reset/confirm",
            None,
            json!({ "token": token, "new_password": password }),
        )
    };
    confirm("made-up", "a new long passphrase")
        .await
        .error(400, "bad_token");
    // A weak password is refused before the token is used.
    confirm(&token, "short").await.error(400, "weak_password");
    let done = confirm(&token, "a new long passphrase").await;
    assert_eq!(done.status, 204, "{}", done.text);
    // Used once.
    confirm(&token, "yet another passphrase")
        .await
        .error(400, "bad_token");
    // Every session ended; the old password is gone, the new one works.
    let me = node.get("/api/v1/me", Some(&al.access)).await;
    assert_eq!(me.status, 401);
    let old = node
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "username": "al", "password": PASSWORD }),
        )
        .await;
    assert_eq!(old.status, 401);
    let al = node.login("al", "a new long passphrase").await;

    // Asked by address, a second mail with a second token.
    node.post(
        "/api/v1/account/password/reset",
        None,
        json!({ "email": "AL@example.org" }),
    )
    .await
    .expect(202);
    sink.nth(2, "al@example.org", "Reset your Spaces password")
        .await;

    // One verification, two resets so far: the hourly limit (5) is two away.
    for n in 0..2 {
        node.put(
            "/api/v1/account/email",
            Some(&al.access),
            json!({ "address": format!("al{n}@example.org") }),
        )
        .await
        .expect(202);
    }
    node.put(
        "/api/v1/account/email",
        Some(&al.access),
        json!({ "address": "al9@example.org" }),
    )
    .await
    .error(429, "too_many_mails");
    let state = node
        .get("/api/v1/account/email", Some(&al.access))
        .await
        .expect(200);
    assert_eq!(state["address"], "al1@example.org");

    // A node with no relay configured sends nothing and says so.
    let quiet_dir = data_dir();
    let quiet = Node::start(quiet_dir.path(), &[]).await;
    let bo = quiet.register("bo").await;
    quiet
        .get("/api/v1/account/email", Some(&bo.access))
        .await
        .error(503, "email_off");
    quiet
        .post(
            "/api/v1/account/password/reset",
            None,
            json!({ "username": "bo" }),
        )
        .await
        .error(503, "email_off");
}

/// A digest queued while the relay is down is kept across a restart and
/// sent once the relay answers.
#[tokio::test]
async fn a_digest_queued_while_the_relay_is_down_survives_a_restart() {
    let sink = Sink::start().await;
    let ok = sink.env();
    let ok: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A relay that does not answer: a port nobody listens on.
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    let dead: Vec<(&str, &str)> = ok
        .iter()
        .map(|(k, v)| match *k {
            "SPACES__EMAIL__SMTP_PORT" => (*k, dead_port.as_str()),
            _ => (*k, *v),
        })
        .collect();
    let dir = data_dir();
    let mut node = Node::start(dir.path(), &ok).await;
    let al = node.register("al").await;
    let bo = node.register("bo").await;
    verified(&node, &sink, &al, "al@example.org").await;
    let room = node
        .create_room(&bo, json!({ "name": "ops", "visibility": "public" }))
        .await;
    node.join(&al, &room).await;
    node.terminate().await;

    let mut node = Node::start(dir.path(), &dead).await;
    send(
        &node,
        &bo,
        &room,
        json!({ "body": "while the relay is down", "mentions": { "users": [al.id] } }),
    )
    .await;
    until("the digest was tried and failed", || {
        let node = &node;
        async move { (node.metric("spaces_email_failed_total").await >= 1).then_some(()) }
    })
    .await;
    assert_eq!(node.metric("spaces_email_digests_queued_total").await, 1);
    assert_eq!(sink.count("al@example.org", "unread message"), 0);
    node.terminate().await;

    let node = Node::start(dir.path(), &ok).await;
    let digest = sink.nth(1, "al@example.org", "unread message").await;
    assert!(body(&digest).contains("while the relay is down"));
    // Decided before the restart: not queued again.
    assert_eq!(node.metric("spaces_email_digests_queued_total").await, 0);
}
