#!/usr/bin/env bash
# Checks the workspace's dependency graph against deny.toml with cargo-deny:
# licences, bans (duplicate versions, wildcard requirements) and sources. Runs
# offline; the advisories check is not run here (it needs the RustSec
# database, which the test machines cannot download; see the README's Test
# section for running it by hand).
#
# cargo-deny comes from crates.io at a pinned version: the one on PATH is used
# when it is that version, otherwise it is built once (`cargo install
# --locked`, several minutes) into $CARGO_HOME/tools/cargo-deny-<version>/,
# which later runs reuse. Needs nothing but the Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2

deny=""
if command -v cargo-deny >/dev/null 2>&1 \
  && [ "$(cargo-deny --version 2>/dev/null)" = "cargo-deny $CARGO_DENY_VERSION" ]; then
  deny="$(command -v cargo-deny)"
else
  root="${CARGO_HOME:-$HOME/.cargo}/tools/cargo-deny-$CARGO_DENY_VERSION"
  deny="$root/bin/cargo-deny"
  if [ "$("$deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
    echo "== deny: installing cargo-deny $CARGO_DENY_VERSION from crates.io into $root"
    # A throw-away target directory: the release build is not worth keeping.
    env -u CARGO_TARGET_DIR cargo install --locked --root "$root" "cargo-deny@$CARGO_DENY_VERSION"
  fi
fi

# The graph covers every target platform, so its crates (Windows-only ones
# too) must be in the local registry cache before the offline run; a no-op
# when they already are. Only crates.io is contacted.
cargo fetch --locked --quiet

# --offline: no advisory database, no crate downloads, no other network.
"$deny" --offline --locked --color never check licenses bans sources
