#!/usr/bin/env bash
# Clean-room check for developers: list code runs and prose of this repo that also stand in transformers 4.4.2
# (its wheel, fetched once from PyPI into a cache) and in any further reference trees given as arguments, e.g. a
# checkout of the LoRA fork's examples/NLU. Remaining hits must be facts (field lists, key names, signatures).
#
#   scripts/cleanroom.sh [REF_DIR ...]      exit status 1 when anything is found
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL="${CLEANROOM_TOOL:-$ROOT/../shared/tools/cleanroom_check.py}"
CACHE="${CLEANROOM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lora-nlu-cleanroom}"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
[ -f "$TOOL" ] || { echo "cleanroom.sh: $TOOL not found: set CLEANROOM_TOOL to cleanroom_check.py" >&2; exit 2; }

REF="$CACHE/transformers-4.4.2/transformers"
if [ ! -f "$REF/__init__.py" ]; then
  "$PYTHON" -m pip download -q --no-deps --only-binary :all: transformers==4.4.2 -d "$CACHE/wheel"
  "$PYTHON" -m zipfile -e "$CACHE"/wheel/transformers-4.4.2-*.whl "$CACHE/transformers-4.4.2"
fi
refs=(--ref "$REF")
for dir in "$@"; do refs+=(--ref "$dir"); done
cd "$ROOT" && "$PYTHON" "$TOOL" "${refs[@]}"
