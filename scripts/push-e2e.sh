#!/usr/bin/env bash
# Web Push against an implementation nobody here wrote: installs http_ece
# (RFC 8291, aes128gcm) and cryptography (the VAPID JWT's ES256, RFC 8292)
# from PyPI, pinned, into a virtualenv under the cargo target directory
# (reused across runs), then runs the integration tests `push::` with
# SPACES_PUSH_PYTHON pointing at it: every payload a node pushes to the
# test's push service on 127.0.0.1 is decrypted and its JWT verified by
# scripts/push-verify.py. Without SPACES_PUSH_PYTHON those tests decrypt
# with the Rust implementation only.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_ECE_VERSION=1.2.1
CRYPTOGRAPHY_VERSION=50.0.2

target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
venv="$target/push-e2e/venv"
want="http_ece==$HTTP_ECE_VERSION cryptography==$CRYPTOGRAPHY_VERSION"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  echo "== push-e2e: installing $want from PyPI into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $want
  echo "$want" >"$venv/.installed"
fi

echo "== push-e2e: integration tests push::"
SPACES_PUSH_PYTHON="$venv/bin/python" cargo test --locked -p spaces-node --test integration -- push::
