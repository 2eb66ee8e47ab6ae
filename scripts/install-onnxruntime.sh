#!/usr/bin/env bash
# Installs ONNX Runtime for the moderation service (crates/moderation loads
# it at run time): the PyPI wheel `onnxruntime`, pinned, into a virtualenv
# under the cargo target directory, and its shared library copied to
# <target>/onnxruntime/libonnxruntime.so, where a `spaces` binary built in
# <target>/<profile>/ looks by default (`moderation.onnxruntime_path` and
# ORT_DYLIB_PATH override it). Idempotent; needs python3 with venv. The
# library needs only glibc and libstdc++.
#
# Prints the library's path on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

ONNXRUNTIME_VERSION=1.31.1
target="${CARGO_TARGET_DIR:-$PWD/target}"
dir="$target/onnxruntime"
lib="$dir/libonnxruntime.so"
stamp="$dir/version"
if [ -f "$lib" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$ONNXRUNTIME_VERSION" ]; then
  echo "$lib"
  exit 0
fi
mkdir -p "$dir"
venv="$dir/venv"
echo "== installing onnxruntime $ONNXRUNTIME_VERSION from PyPI into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
# --no-deps: only the shared library is used, not the Python package's numpy & co.
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps "onnxruntime==$ONNXRUNTIME_VERSION" >&2
found=$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
# A copy, not a link: the venv may be rebuilt while a node runs.
cp "$found" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "$ONNXRUNTIME_VERSION" > "$stamp"
echo "$lib"
