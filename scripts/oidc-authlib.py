"""The node's OAuth2 / OpenID Connect provider driven by authlib, a client
library nobody here wrote. Run by tests/integration/oidc.rs (with
SPACES_OIDC_PYTHON, which scripts/oidc-e2e.sh sets up) against a node it
started, with a confidential client registered by `spaces admin
oauth-client add` and a user who signed up.

Usage: oidc-authlib.py BASE CLIENT_ID CLIENT_SECRET REDIRECT_URI USER PASSWORD

Checks, each failing loudly: discovery; the authorization code flow with
PKCE (S256) through the consent API, driven over HTTP with the user's own
token as the web client's consent page does; the token exchange (HTTP
Basic client authentication); the ID token verified against the JWKS
(signature, iss, aud, exp, iat, nonce); userinfo; refresh; revocation
(RFC 7009); and the refusals: a redirect URI the client did not register,
`plain` PKCE, a reused code and a reused refresh token, each with its OAuth
error.
"""

import sys
import warnings
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

with warnings.catch_warnings():
    # authlib.jose is deprecated in favour of joserfc, but still authlib's.
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, JsonWebToken
    from authlib.oidc.core import CodeIDToken

base, client_id, client_secret, redirect_uri, username, password = sys.argv[1:]
TIMEOUT = 30


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


def oauth_error(call):
    """The OAuth error code `call` raised (authlib's OAuthError)."""
    try:
        call()
    except Exception as error:  # authlib raises its OAuthError subclasses
        return getattr(error, "error", repr(error))
    return None


meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=TIMEOUT).json()
check(meta["code_challenge_methods_supported"] == ["S256"], "discovery: S256 only")
check("EdDSA" in meta["id_token_signing_alg_values_supported"], "discovery: EdDSA ID tokens")
issuer = meta["issuer"]

login = requests.post(
    f"{base}/api/v1/auth/login",
    json={"username": username, "password": password},
    timeout=TIMEOUT,
)
login.raise_for_status()
user_auth = {"Authorization": f"Bearer {login.json()['access_token']}"}


def session(**kwargs):
    return OAuth2Session(
        client_id,
        client_secret,
        scope="openid profile read",
        redirect_uri=redirect_uri,
        token_endpoint_auth_method="client_secret_basic",
        **kwargs,
    )


def consent(authorization_url, approve=True):
    """What the web client's consent page does: follow /oauth2/authorize to
    /consent, show the request, post the user's decision."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=TIMEOUT)
    check(response.status_code == 302, f"authorize redirects ({response.status_code})")
    location = response.headers["Location"]
    check(location.startswith("/consent?"), "to the consent page")
    query = urlsplit(location).query
    view = requests.get(
        f"{base}/api/v1/oauth2/authorization?{query}", headers=user_auth, timeout=TIMEOUT
    ).json()
    check(view["client_id"] == client_id, "the consent page names the client")
    decision = dict(parse_qsl(query))
    decision["approve"] = approve
    answer = requests.post(
        f"{base}/api/v1/oauth2/authorization", json=decision, headers=user_auth, timeout=TIMEOUT
    )
    answer.raise_for_status()
    return answer.json()["redirect_to"]


# The code flow with PKCE.
client = session(code_challenge_method="S256")
verifier = generate_token(64)
nonce = generate_token(24)
url, state = client.create_authorization_url(
    meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
)
callback = consent(url)
check(dict(parse_qsl(urlsplit(callback).query)).get("state") == state, "state comes back")
token = client.fetch_token(
    meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
)
check(token["token_type"] == "Bearer" and "refresh_token" in token, "tokens issued")
check(token["scope"] == "openid profile read", "the granted scopes")

# The ID token against the JWKS.
jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=TIMEOUT).json())
claims = JsonWebToken(["EdDSA"]).decode(
    token["id_token"],
    jwks,
    claims_cls=CodeIDToken,
    claims_options={"iss": {"essential": True, "value": issuer}},
    claims_params={"nonce": nonce, "client_id": client_id},
)
claims.validate()
check(claims["aud"] == client_id and claims["nonce"] == nonce, "ID token verified (JWKS, iss, aud, nonce, exp)")
tampered = token["id_token"][:-4] + ("AAAA" if not token["id_token"].endswith("AAAA") else "BBBB")
check(
    oauth_error(lambda: JsonWebToken(["EdDSA"]).decode(tampered, jwks)) is not None,
    "a tampered ID token does not verify",
)

# userinfo.
info = client.get(meta["userinfo_endpoint"], timeout=TIMEOUT).json()
check(info["sub"] == claims["sub"], "userinfo's sub is the ID token's")
check(info["preferred_username"] == username, "userinfo has the profile")

# The API with the client's token: reads, but no sending (scope `read`).
check(client.get(f"{base}/api/v1/rooms", timeout=TIMEOUT).status_code == 200, "the API reads")
refused = client.post(f"{base}/api/v1/rooms", json={"name": "x"}, timeout=TIMEOUT)
check(
    refused.status_code == 403 and refused.json()["code"] == "insufficient_scope",
    "a read-only token cannot create a room",
)

# Refresh, then the old refresh token again: refused, and the session ends.
old_refresh = token["refresh_token"]
renewed = client.refresh_token(meta["token_endpoint"], refresh_token=old_refresh)
check(renewed["refresh_token"] != old_refresh, "refresh rotates the refresh token")
check(client.get(meta["userinfo_endpoint"], timeout=TIMEOUT).status_code == 200, "renewed token works")
reuse = oauth_error(lambda: session().refresh_token(meta["token_endpoint"], refresh_token=old_refresh))
check(reuse == "invalid_grant", f"a reused refresh token: invalid_grant ({reuse})")
gone = requests.get(
    meta["userinfo_endpoint"],
    headers={"Authorization": f"Bearer {renewed['access_token']}"},
    timeout=TIMEOUT,
)
check(gone.status_code == 401, "reuse ended the session")

# Revocation (RFC 7009).
client = session(code_challenge_method="S256")
verifier = generate_token(64)
url, _ = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
callback = consent(url)
token = client.fetch_token(
    meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
)
# A reused code: invalid_grant (and what it gave is revoked).
reused = oauth_error(
    lambda: session().fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
    )
)
check(reused == "invalid_grant", f"a reused code: invalid_grant ({reused})")
check(
    client.get(meta["userinfo_endpoint"], timeout=TIMEOUT).status_code == 401,
    "the reused code's tokens are revoked",
)
client = session(code_challenge_method="S256")
verifier = generate_token(64)
url, _ = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier)
token = client.fetch_token(
    meta["token_endpoint"], authorization_response=consent(url), code_verifier=verifier
)
revoked = client.revoke_token(
    meta["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
)
check(revoked.status_code == 200, "revocation answers 200")
check(
    client.get(meta["userinfo_endpoint"], timeout=TIMEOUT).status_code == 401,
    "revoking the refresh token ends the access token too",
)
check(
    client.revoke_token(meta["revocation_endpoint"], token="nonsense").status_code == 200,
    "revoking an unknown token is 200 (RFC 7009 §2.2)",
)

# A redirect URI the client did not register: an error shown, not redirected.
stranger = OAuth2Session(
    client_id, client_secret, scope="openid", redirect_uri=redirect_uri + "/elsewhere",
    code_challenge_method="S256",
)
url, _ = stranger.create_authorization_url(
    meta["authorization_endpoint"], code_verifier=generate_token(64)
)
response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
check(
    response.status_code == 400 and response.json()["error"] == "invalid_request",
    "a redirect URI that is not registered: 400 invalid_request, no redirect",
)

# `plain` PKCE: back to the client with invalid_request.
plain = session(code_challenge_method="plain")
url, state = plain.create_authorization_url(
    meta["authorization_endpoint"], code_verifier=generate_token(64)
)
response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
location = response.headers.get("Location", "")
params = dict(parse_qsl(urlsplit(location).query))
check(
    response.status_code == 302
    and location.startswith(redirect_uri)
    and params.get("error") == "invalid_request"
    and params.get("state") == state,
    "plain PKCE: invalid_request back to the client, with its state",
)
print("all checks passed")
