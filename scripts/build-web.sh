#!/usr/bin/env bash
# Builds the web client into web-ui/dist, which the node serves at "/".
# Idempotent and quick when nothing changed: dependencies are installed only
# when package-lock.json changed, and the client is rebuilt only when one of
# its sources did. Needs Node.js >= 20.19 and npm (installed from PyPI if absent).
set -euo pipefail
scripts=$(cd "$(dirname "$0")" && pwd)
cd "$scripts/../web-ui"

# shellcheck source=node-env.sh
source "$scripts/node-env.sh"

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

lock_hash=$(hash_of package-lock.json package.json)
if [ "$(cat node_modules/.spaces-lock-hash 2>/dev/null)" != "$lock_hash" ]; then
  echo "== web-ui: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" >node_modules/.spaces-lock-hash
fi

# Every input of the build, in a stable order.
mapfile -d '' inputs < <(find src public index.html package.json package-lock.json \
  tsconfig.json vite.config.ts -type f -print0 | sort -z)
src_hash=$(hash_of "${inputs[@]}")
if [ -f dist/index.html ] && [ "$(cat node_modules/.spaces-build-hash 2>/dev/null)" = "$src_hash" ]; then
  echo "== web-ui: dist is up to date"
  exit 0
fi
echo "== web-ui: typecheck and build"
npm run --silent typecheck
npm run --silent build -- --logLevel warn
# Precompressed copies: the node serves file.gz to clients that accept gzip.
find dist -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' -o -name '*.svg' \) -exec gzip -9 -k -f {} +
echo "$src_hash" >node_modules/.spaces-build-hash
echo "== web-ui: built into $(pwd)/dist"
