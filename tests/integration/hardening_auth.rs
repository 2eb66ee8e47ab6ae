//! Authentication that cannot be turned against its users: a forged refresh
//! token does not end the session it names; sign-in limits throttle the
//! address that guesses, not the account's owner; sign-up limits are per
//! address before they are node-wide.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Node, PASSWORD, User, node};

/// A client whose connections come from `127.0.0.<last>`: all of 127/8 is
/// loopback on Linux, so each is "another address" to the node.
struct From {
    http: reqwest::Client,
    addr: IpAddr,
}

/// What a request from a [`From`] got back.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Answer {
    #[track_caller]
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// A 429 `rate_limited` with a `Retry-After` of at least a second.
    #[track_caller]
    fn assert_throttled(&self) {
        assert_eq!(
            (self.status, self.code()),
            (429, "rate_limited"),
            "{self:?}"
        );
        assert!(self.retry_after.is_some_and(|s| s >= 1), "{self:?}");
    }
}

impl From {
    fn new(last: u8) -> From {
        let addr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, last));
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(addr)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building a client");
        From { http, addr }
    }

    async fn post(&self, node: &Node, path: &str, body: Value) -> Answer {
        let response = self
            .http
            .post(node.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} from {}: {e}", self.addr));
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            body,
            retry_after,
        }
    }

    async fn login(&self, node: &Node, username: &str, password: &str) -> Answer {
        self.post(
            node,
            "/api/v1/auth/login",
            json!({ "username": username, "password": password }),
        )
        .await
    }

    async fn register(&self, node: &Node, username: &str) -> Answer {
        self.post(
            node,
            "/api/v1/auth/register",
            json!({ "username": username, "password": PASSWORD }),
        )
        .await
    }

    async fn login_on_device(&self, node: &Node, password: &str, device_token: &str) -> Answer {
        self.post(
            node,
            "/api/v1/auth/login",
            json!({ "username": "alice", "password": password, "device_token": device_token }),
        )
        .await
    }
}

/// Back-off waits long enough that nothing in a test outlives them: a
/// throttled address stays throttled for the whole test, whatever the
/// machine's speed.
const SLOW_BACKOFF: (&str, &str) = ("SPACES__LOGIN__BACKOFF_BASE_SECS", "300");

/// `<victim's session id>.<anything>` is refused and leaves the session
/// working; an earlier refresh token the session really issued, presented
/// again, still ends it.
#[tokio::test]
async fn a_forged_refresh_token_leaves_the_victims_session_working() {
    let (_dir, node) = node(&[]).await;
    let victim = node.register("alice").await;
    let refresh = |token: &str| {
        node.post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": token }),
        )
    };
    // The session id is public (it is in every access token): forge tokens
    // for it, before and after the session has rotated.
    let forged = |secret: &str| format!("{}.{secret}", victim.session);
    refresh(&forged("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .await
        .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&victim.access))
        .await
        .expect(200);
    let rotated = User::from_tokens("alice", &refresh(&victim.refresh).await.expect(200));
    for secret in ["x", "", "not-a-token-at-all", &"z".repeat(43)] {
        refresh(&forged(secret))
            .await
            .error(401, "bad_refresh_token");
    }
    node.get("/api/v1/me", Some(&rotated.access))
        .await
        .expect(200);
    // The owner's current token still rotates.
    let again = User::from_tokens("alice", &refresh(&rotated.refresh).await.expect(200));
    assert_eq!(again.session, victim.session);

    // Real reuse: a refresh token this session issued before. Both holders
    // are logged out.
    refresh(&victim.refresh)
        .await
        .error(401, "bad_refresh_token");
    node.get("/api/v1/me", Some(&again.access))
        .await
        .error(401, "session_revoked");
    refresh(&again.refresh)
        .await
        .error(401, "bad_refresh_token");
}

/// One address guessing alice's password is throttled; alice signs in from
/// another address, and from her known device even at the guesser's address
/// (a shared NAT).
#[tokio::test]
async fn brute_force_from_one_address_throttles_it_not_the_owner() {
    let (_dir, node) = node(&[SLOW_BACKOFF]).await;
    node.register("alice").await;
    let phone = From::new(4).login(&node, "alice", PASSWORD).await;
    assert_eq!(phone.status, 200, "{phone:?}");
    let device_token = phone.body["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();

    let attacker = From::new(2);
    // The first guesses are answered (free_failures_per_address, default 5)...
    for _ in 0..5 {
        let answer = attacker.login(&node, "alice", "guess guess").await;
        assert_eq!((answer.status, answer.code()), (401, "bad_credentials"));
    }
    // ...then the address is in back-off: every further try, at once or
    // concurrently, and even the right password, is 429.
    let guesses = (0..20).map(|_| attacker.login(&node, "alice", "guess again"));
    for answer in futures_util::future::join_all(guesses).await {
        answer.assert_throttled();
        assert!(answer.retry_after.unwrap() <= 300, "{answer:?}");
    }
    attacker
        .login(&node, "alice", PASSWORD)
        .await
        .assert_throttled();

    // Alice, from elsewhere, with her password.
    let laptop = From::new(3).login(&node, "alice", PASSWORD).await;
    assert_eq!(laptop.status, 200, "{laptop:?}");
    // Alice's phone behind the attacker's address: a known device.
    let shared_nat = attacker
        .login_on_device(&node, PASSWORD, &device_token)
        .await;
    assert_eq!(shared_nat.status, 200, "{shared_nat:?}");
    // The attacker is still throttled.
    attacker
        .login(&node, "alice", "one more")
        .await
        .assert_throttled();

    assert!(node.metric("spaces_login_failures_total").await >= 5);
    assert!(node.metric("spaces_login_throttled_total").await >= 22);
}

/// Guesses from many addresses put alice's account in back-off for devices
/// it has not seen; her known device still signs in, and that ends the
/// back-off.
#[tokio::test]
async fn distributed_guessing_backs_the_account_off_but_known_devices_get_in() {
    let (_dir, node) = node(&[
        SLOW_BACKOFF,
        ("SPACES__LOGIN__FREE_FAILURES_PER_ADDRESS", "3"),
        ("SPACES__LOGIN__FREE_FAILURES_PER_ACCOUNT", "6"),
    ])
    .await;
    let registered = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "username": "alice", "password": PASSWORD }),
        )
        .await
        .expect(201);
    let device_token = registered["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();

    for last in [10, 11] {
        let bot = From::new(last);
        for _ in 0..3 {
            let answer = bot.login(&node, "alice", "guess guess").await;
            assert_eq!((answer.status, answer.code()), (401, "bad_credentials"));
        }
    }
    // A third address, never seen: the account is in back-off for it.
    let newcomer = From::new(12);
    newcomer
        .login(&node, "alice", PASSWORD)
        .await
        .assert_throttled();
    // A forged device token, or bob's, is no known device for alice.
    let bobs = node
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "username": "bob", "password": PASSWORD }),
        )
        .await
        .expect(201);
    let bobs_device = bobs["device_token"].as_str().expect("a device token");
    for foreign in ["d1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA", bobs_device] {
        newcomer
            .login_on_device(&node, PASSWORD, foreign)
            .await
            .assert_throttled();
    }
    // Alice's own device, from yet another address: in.
    let home = From::new(13);
    let answer = home.login_on_device(&node, PASSWORD, &device_token).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body["device_token"].is_string());
    // Her sign-in ended the back-off.
    let answer = newcomer.login(&node, "alice", PASSWORD).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

/// One password tried against many usernames from one address: the address
/// is limited across usernames, other addresses are not, and the node-wide
/// failure alarm goes off.
#[tokio::test]
async fn spraying_one_password_over_many_usernames_is_limited() {
    let (_dir, node) = node(&[
        ("SPACES__LOGIN__ADDRESS_FAILURES_BURST", "10"),
        ("SPACES__LOGIN__ADDRESS_FAILURES_PER_MIN", "1"),
        ("SPACES__LOGIN__ALARM_FAILURES_PER_MIN", "8"),
    ])
    .await;
    node.register("zoe").await;
    assert_eq!(node.metric("spaces_login_failure_alarm").await, 0);
    let sprayer = From::new(2);
    for n in 0..10 {
        let answer = sprayer
            .login(&node, &format!("user{n}"), "Password1!")
            .await;
        assert_eq!((answer.status, answer.code()), (401, "bad_credentials"));
    }
    let refused = sprayer.login(&node, "user10", "Password1!").await;
    refused.assert_throttled();
    assert!(refused.retry_after.unwrap() <= 60, "{refused:?}");
    sprayer
        .login(&node, "zoe", "Password1!")
        .await
        .assert_throttled();
    // Another address is not limited by it.
    let other = From::new(3);
    let answer = other.login(&node, "user10", "Password1!").await;
    assert_eq!((answer.status, answer.code()), (401, "bad_credentials"));
    assert_eq!(other.login(&node, "zoe", PASSWORD).await.status, 200);

    assert_eq!(node.metric("spaces_login_failure_alarm").await, 1);
    assert!(node.metric("spaces_login_failures_total").await >= 11);
    assert!(
        node.log()
            .contains("sign-in failure rate above the alarm threshold"),
        "{}",
        node.log()
    );
}

/// Sign-ups are limited per address first: one address at its limit does not
/// stop another from signing up.
#[tokio::test]
async fn registration_limited_at_one_address_does_not_block_another() {
    let (_dir, node) = node(&[
        ("SPACES__LIMITS__REGISTRATION_IP_BURST", "3"),
        ("SPACES__LIMITS__REGISTRATIONS_PER_IP_PER_HOUR", "1"),
    ])
    .await;
    let flood = From::new(2);
    for n in 0..3 {
        let answer = flood.register(&node, &format!("bot{n}")).await;
        assert_eq!(answer.status, 201, "{answer:?}");
    }
    for n in 3..13 {
        let answer = flood.register(&node, &format!("bot{n}")).await;
        answer.assert_throttled();
        assert!(
            answer.retry_after.unwrap() > 60,
            "an hour's rate: {answer:?}"
        );
    }
    let answer = From::new(3).register(&node, "newcomer").await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert!(node.metric("spaces_registrations_throttled_total").await >= 10);
}
