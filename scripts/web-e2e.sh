#!/usr/bin/env bash
# End-to-end tests of the web client in headless Chromium against a real
# node: builds the client and the node, starts `spaces serve` on a free
# loopback port with a fresh data directory, measures the first-load size,
# runs web-ui/e2e/*.test.mjs, and stops the node. Screenshots go to
# $SPACES_E2E_SHOTS (default target/web-e2e-screenshots).
#
# Installs Debian's chromium when /usr/bin/chromium is missing (needs root,
# runs non-interactively).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "web-e2e: /usr/bin/chromium is missing; run as root or: apt-get install chromium" >&2
    exit 1
  fi
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  # Color emoji in screenshots; the tests pass without it.
  apt-get install -y -qq fonts-noto-color-emoji >/dev/null 2>&1 || true
fi

# shellcheck source=node-env.sh
source scripts/node-env.sh
scripts/build-web.sh

if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then
  export CARGO_TARGET_DIR=/work/target
fi
echo "== cargo build -p spaces-node --bin spaces"
cargo build --quiet -p spaces-node --bin spaces
bin="${CARGO_TARGET_DIR:-$root/target}/debug/spaces"
# The moderation tests run the toxicity model: ONNX Runtime beside the
# binary, where it looks by default.
scripts/install-onnxruntime.sh >/dev/null

shots="${SPACES_E2E_SHOTS:-$root/target/web-e2e-screenshots}"
rm -rf "$shots"
mkdir -p "$shots"
work=$(mktemp -d)
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port"

node_pid=
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Short access tokens (20 s) so the tests see the client renew one quietly;
# send limits lifted so scripted history does not hit the rate limiter; a
# 1 s presence grace so a user who leaves shows as offline within the test.
echo "== starting the node on $url"
SPACES__WEB__DIR="$root/web-ui/dist" \
  SPACES__LIMITS__SENDS_PER_SEC=1000 \
  SPACES__LIMITS__SEND_BURST=1000 \
  SPACES__LIMITS__ACCESS_TOKEN_SECS=20 \
  SPACES__PRESENCE__GRACE_SECS=1 \
  RUST_LOG="${RUST_LOG:-warn}" \
  "$bin" serve --data-dir "$work/data" --http-listen "127.0.0.1:$port" \
  --p2p-listen /ip4/127.0.0.1/tcp/0 >"$work/node.log" 2>&1 &
node_pid=$!

node -e "
  const end = Date.now() + 30000;
  (async function poll() {
    try { if ((await fetch('$url/healthz')).ok) return; } catch {}
    if (Date.now() > end) { console.error('web-e2e: node did not answer /healthz in 30 s'); process.exit(1); }
    setTimeout(poll, 100);
  })();
" || { cat "$work/node.log" >&2; exit 1; }

cd web-ui
echo "== unit tests (markdown renderer, store)"
npm run --silent test
echo "== first-load size"
node e2e/size.mjs "$url"

echo "== e2e tests (headless chromium)"
status=0
SPACES_E2E_URL="$url" SPACES_E2E_SHOTS="$shots" SPACES_E2E_BIN="$bin" \
  timeout 400 node --test --test-concurrency=1 --test-reporter=spec e2e/ || status=$?
echo "== screenshots: $shots"
if [ "$status" != 0 ]; then
  echo "== node log (last 40 lines)" >&2
  tail -n 40 "$work/node.log" >&2
fi
exit "$status"
