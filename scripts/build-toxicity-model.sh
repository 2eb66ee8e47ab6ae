#!/usr/bin/env bash
# Rebuilds models/toxicity/toxicity.onnx (and metrics.json, data/vectors.tsv)
# from the training templates in the repository, with pinned PyPI packages in
# a virtualenv under the cargo target directory. Takes about a minute and a
# half on one core. `--eval-only` re-measures the checked-in model instead.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/ml-venv"
pins=(numpy==2.4.6 scipy==1.17.1 scikit-learn==1.9.1 onnx==1.23.2 onnxruntime==1.31.1 alt-profanity-check==1.9.1)
if ! "$venv/bin/python" -c "import sklearn, onnx, onnxruntime, profanity_check" 2>/dev/null; then
  echo "== installing ${pins[*]} into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
fi
# One BLAS thread: the same sums in the same order, so the same weights.
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$venv/bin/python" models/toxicity/train.py "$@"
