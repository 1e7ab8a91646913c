#!/usr/bin/env bash
# Rebuild the bundled default model from a fresh clone (see tools/default_model/build.py and weights/README.md).
#   bash tools/default_model/build.sh [--work DIR] [--cache DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python}" -m tools.default_model.build "$@"
