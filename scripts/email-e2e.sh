#!/usr/bin/env bash
# Email against an SMTP server nobody here wrote: installs aiosmtpd from
# PyPI, pinned, into a virtualenv under the cargo target directory (reused
# across runs), then runs the integration tests `email::` with
# SPACES_EMAIL_PYTHON pointing at it: every mail a node sends goes to
# scripts/email-sink.py (aiosmtpd on 127.0.0.1), which writes it to a
# directory the tests read. Without SPACES_EMAIL_PYTHON those tests use a
# minimal SMTP receiver written in the test itself.
set -euo pipefail
cd "$(dirname "$0")/.."

AIOSMTPD_VERSION=1.4.6

target="${CARGO_TARGET_DIR:-$PWD/target}"
mkdir -p "$target"
venv="$target/email-e2e/venv"
want="aiosmtpd==$AIOSMTPD_VERSION"
if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$want" ]; then
  echo "== email-e2e: installing $want from PyPI into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$want"
  echo "$want" >"$venv/.installed"
fi

echo "== email-e2e: integration tests email::"
SPACES_EMAIL_PYTHON="$venv/bin/python" cargo test --locked -p spaces-node --test integration -- email::
