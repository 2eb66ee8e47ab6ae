#!/usr/bin/env bash
# Checks the packaging files that can be checked on this machine without a
# network: the systemd unit with `systemd-analyze verify` (needs systemd,
# from Debian's `systemd` package) and its hardening with
# `systemd-analyze security --offline`. The container image is not built
# here: its base images come from a container registry this machine cannot
# reach (see README, "Operate a node").
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v systemd-analyze >/dev/null; then
  echo "packaging/check.sh: systemd-analyze not installed (apt-get install systemd); skipped" >&2
  exit 0
fi

# `verify` wants the unit's ExecStart binary to exist: point it at a stand-in.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
install -m 0755 /bin/true "$work/spaces"
sed "s|/usr/local/bin/spaces|$work/spaces|" spaces.service >"$work/spaces.service"

echo "== systemd-analyze verify packaging/spaces.service"
# Warnings about the host (no systemd running, as in a container) are not the unit's.
out=$(systemd-analyze verify "$work/spaces.service" 2>&1) || {
  echo "$out" >&2
  exit 1
}
if printf '%s\n' "$out" | grep -E "spaces\.service" >&2; then
  echo "packaging/check.sh: the unit has problems (above)" >&2
  exit 1
fi

echo "== systemd-analyze security --offline=true packaging/spaces.service"
# The exposure score: 0 (locked down) to 10 (unprotected). A regression past
# 2.5 ("OK" in systemd's words is below 4) fails the check.
score=$(systemd-analyze security --offline=true --threshold=25 "$work/spaces.service" 2>&1 | tee "$work/security.txt" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  cat "$work/security.txt" >&2
  echo "packaging/check.sh: no exposure score" >&2
  exit 1
fi
echo "exposure $score"
awk -v s="$score" 'BEGIN { exit !(s <= 2.5) }' || {
  grep -E "✗" "$work/security.txt" >&2 || true
  echo "packaging/check.sh: exposure $score is above 2.5" >&2
  exit 1
}
echo "packaging ok"
