#!/usr/bin/env bash
# The OAuth2 / OpenID Connect provider against a client library nobody here
# wrote: installs authlib (and requests, its HTTP client) from PyPI, pinned,
# into a virtualenv under the cargo target directory (reused across runs),
# then runs the integration tests `oidc::` with SPACES_OIDC_PYTHON pointing
# at it, so `oidc::authlib_drives_the_provider` runs scripts/oidc-authlib.py
# against a real node: discovery, code + PKCE through the consent API,
# token exchange, the ID token verified against the JWKS, userinfo, refresh,
# revocation and the refusals. Without SPACES_OIDC_PYTHON that test says it
# did not run; the other `oidc::` tests drive the provider from Rust.
set -euo pipefail
cd "$(dirname "$0")/.."

AUTHLIB_VERSION=1.9.10
REQUESTS_VERSION=2.32.5

target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
venv="$target/oidc-e2e/venv"
want="authlib==$AUTHLIB_VERSION requests==$REQUESTS_VERSION"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  echo "== oidc-e2e: installing $want from PyPI into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi

echo "== oidc-e2e: integration tests oidc::"
SPACES_OIDC_PYTHON="$venv/bin/python" cargo test --locked -p spaces-node --test integration -- oidc::
