#!/usr/bin/env bash
# Install greentrack into .venv and run the demo end to end: a small real training loop,
# measured, ending with the energy summary and a run directory under runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install
.venv/bin/python examples/plain_torch.py "$@"
echo
.venv/bin/greentrack devices
