#!/usr/bin/env bash
# Runs every test: formatting, lints, the dependency policy (deny.toml), unit,
# property and integration tests of the workspace, an OpenAPI fuzzer over a
# live node, Web Push payloads checked by an independent decryptor, the
# OAuth2/OIDC provider driven by authlib, email received by a real SMTP
# server (aiosmtpd), then the
# web client's tests in a real browser. Reuses a target
# directory outside the checkout when one exists (CI machines may keep
# /work/target between runs); never needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -d /work/target ] && [ -w /work/target ]; then
  export CARGO_TARGET_DIR=/work/target
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo deny: licences, bans (duplicate versions), sources"
scripts/deny.sh
echo "== ONNX Runtime for the moderation tests (PyPI wheel into the target directory)"
scripts/install-onnxruntime.sh
echo "== cargo test"
cargo test --workspace --locked
echo "== packaging: systemd unit (systemd-analyze verify, security)"
packaging/check.sh
echo "== OpenAPI fuzzing of a live node (schemathesis)"
scripts/openapi-fuzz.sh
echo "== Web Push checked by http_ece and cryptography (PyPI)"
scripts/push-e2e.sh
echo "== the OAuth2/OIDC provider driven by authlib (PyPI)"
scripts/oidc-e2e.sh
echo "== Email through a real SMTP server (aiosmtpd, PyPI)"
scripts/email-e2e.sh
echo "== web client: unit and end-to-end tests in headless Chromium"
scripts/web-e2e.sh
