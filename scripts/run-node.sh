#!/usr/bin/env bash
# Sets up and runs a Spaces node from a fresh clone: builds the web client
# (with Node.js from PyPI if the machine has none), installs ONNX Runtime for
# moderation (the PyPI wheel, into target/onnxruntime/, where the binary
# looks by default), builds the node in release mode, and serves it. The data directory
# (./spaces-data by default) with the node key, token secret and store is
# created on first start. Extra arguments go to `spaces serve`, e.g.
#   scripts/run-node.sh --http-listen 0.0.0.0:8080 --data-dir /var/lib/spaces
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x scripts/build-web.sh ]; then
  if ! scripts/build-web.sh; then
    echo "warning: the web client did not build; the node serves the API only" >&2
  fi
fi
if ! scripts/install-onnxruntime.sh >/dev/null; then
  echo "warning: ONNX Runtime did not install; the node serves chat without moderation" >&2
fi
export SPACES__WEB__DIR="${SPACES__WEB__DIR:-$PWD/web-ui/dist}"
exec cargo run --release --locked -p spaces-node --bin spaces -- serve "$@"
