//! Passkeys against a real node, driven by a software authenticator
//! (webauthn-authenticator-rs's `SoftPasskey`: real P-256 keys, real
//! signatures, real client data): registration on a signed-in account,
//! sign-in with the passkey alone (no username), list, rename, remove, the
//! passkey as a second factor after the password, the session list, and
//! every refusal: another origin, a replayed or expired ceremony, an unknown
//! credential, a counter that went back (a cloned key), and the sign-in
//! guard's per-address budget.
//!
//! `SoftPasskey` keeps no discoverable credentials: asked with an empty
//! allow-list it finds nothing, and it returns no user handle. [`Device`]
//! wraps it the way a platform authenticator behaves: it remembers the
//! credentials it made and the user handle each was made for, offers them
//! when the relying party names none, and returns the handle. The keys and
//! signatures stay SoftPasskey's; only the lookup is ours.

use std::time::Duration;

use serde_json::{Value, json};
use webauthn_authenticator_rs::AuthenticatorBackendHashedClientData;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, WebauthnAuthenticator, WebauthnCError,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{
    AllowCredentials, PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions,
};

use crate::support::{Node, PASSWORD, User, node};

/// A platform authenticator: SoftPasskey plus discoverable credentials.
pub struct Device {
    soft: SoftPasskey,
    /// (credential id, user handle) of every credential it made.
    resident: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Device {
    pub fn new() -> Device {
        // `true`: claims user verification (no PIN or finger here), which
        // passkeys require.
        Device {
            soft: SoftPasskey::new(true),
            resident: Vec::new(),
        }
    }
}

impl AuthenticatorBackendHashedClientData for Device {
    fn perform_register(
        &mut self,
        client_data_hash: Vec<u8>,
        options: PublicKeyCredentialCreationOptions,
        timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        let user_handle = options.user.id.clone();
        let made = self
            .soft
            .perform_register(client_data_hash, options, timeout_ms)?;
        self.resident.push((made.raw_id.clone(), user_handle));
        Ok(made)
    }

    fn perform_auth(
        &mut self,
        client_data_hash: Vec<u8>,
        mut options: PublicKeyCredentialRequestOptions,
        timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        let discoverable = options.allow_credentials.is_empty();
        if discoverable {
            options.allow_credentials = self
                .resident
                .iter()
                .map(|(id, _)| AllowCredentials {
                    type_: "public-key".into(),
                    id: id.clone(),
                    transports: None,
                })
                .collect();
        }
        let mut answer = self
            .soft
            .perform_auth(client_data_hash, options, timeout_ms)?;
        if discoverable {
            answer.response.user_handle = self
                .resident
                .iter()
                .find(|(id, _)| *id == answer.raw_id)
                .map(|(_, handle)| handle.clone());
        }
        Ok(answer)
    }
}

/// The origin passkeys are bound to on a node without `http.public_url`.
pub fn origin(node: &Node) -> Url {
    Url::parse(&format!("http://localhost:{}", node.addr.port())).unwrap()
}

/// Registers a passkey on `user`'s account with `device`; returns its id.
pub async fn add_passkey(node: &Node, user: &User, device: &mut Device, name: &str) -> String {
    let begun = node
        .post(
            "/api/v1/passkeys/register/begin",
            Some(&user.access),
            json!({}),
        )
        .await
        .expect(200);
    let options: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap();
    let made = device.do_registration(origin(node), options).unwrap();
    let added = node
        .post(
            "/api/v1/passkeys/register/finish",
            Some(&user.access),
            json!({
                "ceremony_id": begun["ceremony_id"],
                "credential": made,
                "name": name,
            }),
        )
        .await
        .expect(201);
    assert_eq!(added["name"], name);
    added["id"].as_str().unwrap().to_owned()
}

/// Begins a sign-in with a passkey alone: (ceremony id, options).
pub async fn begin_sign_in(node: &Node) -> (String, RequestChallengeResponse) {
    let begun = node
        .post("/api/v1/auth/passkey/begin", None, json!({}))
        .await
        .expect(200);
    assert!(
        begun["options"]["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "a passkey-alone sign-in names no credentials: {begun}"
    );
    (
        begun["ceremony_id"].as_str().unwrap().to_owned(),
        serde_json::from_value(begun["options"].clone()).unwrap(),
    )
}

pub async fn finish(
    node: &Node,
    ceremony_id: &str,
    answer: &PublicKeyCredential,
) -> crate::support::Reply {
    node.post(
        "/api/v1/auth/passkey/finish",
        None,
        json!({ "ceremony_id": ceremony_id, "credential": answer, "device": "soft key" }),
    )
    .await
}

/// A whole passkey-alone sign-in; the token set.
async fn sign_in(node: &Node, device: &mut Device) -> Value {
    let (ceremony, options) = begin_sign_in(node).await;
    let answer = device.do_authentication(origin(node), options).unwrap();
    finish(node, &ceremony, &answer).await.expect(200)
}

/// Register, sign in with the passkey alone, list, rename, remove.
#[tokio::test]
async fn register_sign_in_list_rename_remove() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let mut phone = Device::new();
    let id = add_passkey(&node, &alice, &mut phone, "phone").await;

    let tokens = sign_in(&node, &mut phone).await;
    assert_eq!(tokens["user_id"], alice.id);
    assert!(tokens["device_token"].is_string());
    let me = node
        .get("/api/v1/me", tokens["access_token"].as_str())
        .await
        .expect(200);
    assert_eq!(me["username"], "alice");
    // The same key again: its counter went up, it still signs in.
    sign_in(&node, &mut phone).await;

    let listed = node
        .get("/api/v1/passkeys", Some(&alice.access))
        .await
        .expect(200);
    let passkeys = listed["passkeys"].as_array().unwrap();
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0]["id"], id.as_str());
    assert!(passkeys[0]["last_used_ms"].as_u64().is_some());
    assert_eq!(listed["passkey_second_factor"], false);

    // A second device, then renaming and removing; nobody else may touch them.
    let mut laptop = Device::new();
    let laptop_id = add_passkey(&node, &alice, &mut laptop, "laptop").await;
    let bob = node.register("bob").await;
    let path = format!("/api/v1/passkeys/{id}");
    node.patch(&path, Some(&bob.access), json!({ "name": "mine" }))
        .await
        .error(404, "unknown_passkey");
    node.delete(&path, Some(&bob.access))
        .await
        .error(404, "unknown_passkey");
    let renamed = node
        .patch(&path, Some(&alice.access), json!({ "name": "old phone" }))
        .await
        .expect(200);
    assert_eq!(renamed["name"], "old phone");
    node.patch(&path, Some(&alice.access), json!({ "name": "" }))
        .await
        .error(400, "bad_value");
    node.delete(&path, Some(&alice.access)).await.expect(204);
    let listed = node
        .get("/api/v1/passkeys", Some(&alice.access))
        .await
        .expect(200);
    assert_eq!(listed["passkeys"][0]["id"], laptop_id.as_str());
    assert_eq!(listed["passkeys"].as_array().unwrap().len(), 1);

    // The removed passkey is unknown now, though its signature is good.
    let (ceremony, options) = begin_sign_in(&node).await;
    let answer = phone.do_authentication(origin(&node), options).unwrap();
    finish(&node, &ceremony, &answer)
        .await
        .error(401, "unknown_passkey");
    // The other passkey still signs in.
    sign_in(&node, &mut laptop).await;
}

/// The refusals: another origin, a replayed ceremony, an answer to another
/// ceremony's challenge, and a counter that went back.
#[tokio::test]
async fn refusals() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let mut key = Device::new();
    add_passkey(&node, &alice, &mut key, "key").await;

    // Another origin (another port of localhost: a different site).
    let (ceremony, options) = begin_sign_in(&node).await;
    let elsewhere = Url::parse("http://localhost:1").unwrap();
    let answer = key.do_authentication(elsewhere, options).unwrap();
    finish(&node, &ceremony, &answer)
        .await
        .error(401, "passkey_refused");
    // Registering from another origin is refused too.
    let begun = node
        .post(
            "/api/v1/passkeys/register/begin",
            Some(&alice.access),
            json!({}),
        )
        .await
        .expect(200);
    let options: CreationChallengeResponse =
        serde_json::from_value(begun["options"].clone()).unwrap();
    let made = Device::new()
        .do_registration(Url::parse("http://localhost:1").unwrap(), options)
        .unwrap();
    node.post(
        "/api/v1/passkeys/register/finish",
        Some(&alice.access),
        json!({ "ceremony_id": begun["ceremony_id"], "credential": made }),
    )
    .await
    .error(400, "passkey_refused");

    // A ceremony is answered once: the same answer again finds nothing.
    let (ceremony, options) = begin_sign_in(&node).await;
    let answer = key.do_authentication(origin(&node), options).unwrap();
    finish(&node, &ceremony, &answer).await.expect(200);
    finish(&node, &ceremony, &answer)
        .await
        .error(400, "unknown_ceremony");
    // An old answer to a new ceremony: the challenge is not this one's.
    let (fresh, _) = begin_sign_in(&node).await;
    finish(&node, &fresh, &answer)
        .await
        .error(401, "passkey_refused");

    // A cloned key: two answers signed in order (counters n, n+1), the later
    // one used first. The earlier one then shows a counter that went back,
    // as a copy of the key would.
    let (first, options) = begin_sign_in(&node).await;
    let earlier = key.do_authentication(origin(&node), options).unwrap();
    let (second, options) = begin_sign_in(&node).await;
    let later = key.do_authentication(origin(&node), options).unwrap();
    finish(&node, &second, &later).await.expect(200);
    finish(&node, &first, &earlier)
        .await
        .error(401, "passkey_cloned");

    // A ceremony id that was never issued.
    finish(&node, "AAAAAAAAAAAAAAAAAAAAAA", &later)
        .await
        .error(400, "unknown_ceremony");
}

/// A ceremony answered after its time is refused.
#[tokio::test]
async fn an_expired_ceremony_is_refused() {
    let (_dir, node) = node(&[("SPACES__LOGIN__PASSKEY_CHALLENGE_SECS", "1")]).await;
    let alice = node.register("alice").await;
    let mut key = Device::new();
    add_passkey(&node, &alice, &mut key, "key").await;
    let (ceremony, options) = begin_sign_in(&node).await;
    let answer = key.do_authentication(origin(&node), options).unwrap();
    // Past the one-second deadline (expiry is a deadline, not a race: there
    // is no condition to wait for).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    finish(&node, &ceremony, &answer)
        .await
        .error(400, "ceremony_expired");
    // A new ceremony answered at once goes through.
    sign_in(&node, &mut key).await;
}

/// Passkey answers spend the same per-address failure budget as passwords.
#[tokio::test]
async fn failed_passkey_answers_are_throttled() {
    let (_dir, node) = node(&[
        ("SPACES__LOGIN__ADDRESS_FAILURES_BURST", "3"),
        ("SPACES__LOGIN__ADDRESS_FAILURES_PER_MIN", "1"),
    ])
    .await;
    let alice = node.register("alice").await;
    let mut key = Device::new();
    add_passkey(&node, &alice, &mut key, "key").await;
    let (ceremony, options) = begin_sign_in(&node).await;
    let answer = key.do_authentication(origin(&node), options).unwrap();
    finish(&node, &ceremony, &answer).await.expect(200);
    for _ in 0..3 {
        finish(&node, &ceremony, &answer)
            .await
            .error(400, "unknown_ceremony");
    }
    let reply = finish(&node, &ceremony, &answer).await;
    assert_eq!(reply.status, 429, "{}", reply.text);
}

/// A passkey as the second factor: the password alone no longer signs in;
/// the session shows how it began and with which user agent.
#[tokio::test]
async fn passkey_after_password() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    // Turning it on needs a passkey.
    node.put(
        "/api/v1/sign-in-policy",
        Some(&alice.access),
        json!({ "passkey_second_factor": true }),
    )
    .await
    .error(409, "no_passkey");
    let mut key = Device::new();
    let id = add_passkey(&node, &alice, &mut key, "key").await;
    let policy = node
        .put(
            "/api/v1/sign-in-policy",
            Some(&alice.access),
            json!({ "passkey_second_factor": true }),
        )
        .await
        .expect(200);
    assert_eq!(policy["passkey_second_factor"], true);
    // The last passkey stays while it is needed.
    node.delete(&format!("/api/v1/passkeys/{id}"), Some(&alice.access))
        .await
        .error(409, "last_passkey");

    // A right password: no tokens yet, a ceremony naming alice's passkey.
    let http = reqwest::Client::builder()
        .user_agent("passkey-test/1.0")
        .no_proxy()
        .build()
        .unwrap();
    let pending: Value = {
        let reply = http
            .post(node.url("/api/v1/auth/login"))
            .json(&json!({ "username": "alice", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 202);
        reply.json().await.unwrap()
    };
    assert_eq!(pending["passkey_required"], true);
    assert!(pending.get("access_token").is_none());
    assert_eq!(
        pending["options"]["publicKey"]["allowCredentials"][0]["id"],
        id.as_str()
    );
    // Another user's key cannot answer it.
    let bob = node.register("bob").await;
    let mut bobs = Device::new();
    add_passkey(&node, &bob, &mut bobs, "bob's").await;
    let options: RequestChallengeResponse =
        serde_json::from_value(pending["options"].clone()).unwrap();
    assert!(
        bobs.do_authentication(origin(&node), options.clone())
            .is_err()
    );
    // Alice's key does.
    let answer = key.do_authentication(origin(&node), options).unwrap();
    let tokens: Value = http
        .post(node.url("/api/v1/auth/passkey/finish"))
        .json(&json!({ "ceremony_id": pending["ceremony_id"], "credential": answer }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().expect("tokens");
    let sessions = node.get("/api/v1/sessions", Some(access)).await.expect(200);
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap();
    assert_eq!(current["method"], "password_and_passkey");
    assert_eq!(current["user_agent"], "passkey-test/1.0");
    let first = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["session_id"] == alice.session.as_str())
        .unwrap();
    assert_eq!(first["method"], "password");

    // Off again: the password alone signs in.
    node.put(
        "/api/v1/sign-in-policy",
        Some(access),
        json!({ "passkey_second_factor": false }),
    )
    .await
    .expect(200);
    node.login("alice", PASSWORD).await;
}

/// One client address holds at most its share of waiting ceremonies: past
/// it, 429 `too_many_ceremonies` with `Retry-After`, while a ceremony it
/// already holds still finishes.
#[tokio::test]
async fn a_clients_waiting_ceremonies_are_bounded() {
    let (_dir, node) = node(&[]).await;
    let alice = node.register("alice").await;
    let mut key = Device::new();
    add_passkey(&node, &alice, &mut key, "key").await;
    let (ceremony, options) = begin_sign_in(&node).await;
    let mut refused = None;
    for _ in 0..64 {
        let reply = node
            .post("/api/v1/auth/passkey/begin", None, json!({}))
            .await;
        if reply.status != 200 {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("a client's waiting ceremonies are bounded");
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.body["code"], "too_many_ceremonies");
    let answer = key.do_authentication(origin(&node), options).unwrap();
    finish(&node, &ceremony, &answer).await.expect(200);
}
