#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite: `bash scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec npm test
