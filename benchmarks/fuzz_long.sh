#!/usr/bin/env bash
# The fuzz suite's long profile: every reader, the YAML train config and the server's request
# parsing, with EXAMPLES mutated inputs each (default 2000; the suite itself runs a few dozen).
#   bash benchmarks/fuzz_long.sh [EXAMPLES]
set -euo pipefail
cd "$(dirname "$0")/.."
CROSSRANK_FUZZ_EXAMPLES="${1:-2000}" CROSSRANK_DATA="${CROSSRANK_DATA:-../shared/data}" .venv/bin/python -m pytest -q -p no:cacheprovider \
    tests/data/test_fuzz_readers.py tests/training/test_fuzz_config.py tests/serving/test_fuzz_requests.py
