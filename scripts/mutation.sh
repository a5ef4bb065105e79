#!/usr/bin/env bash
# Mutation testing of the feature modules (configured in pyproject.toml, [tool.mutation]); writes mutation-report.json.
#   bash scripts/mutation.sh                     every module, a seeded sample of 40 mutants each
#   bash scripts/mutation.sh fusion cards        some modules
#   bash scripts/mutation.sh --per-module 0 cli  every mutant of one module
set -euo pipefail
cd "$(dirname "$0")/.."
HF_HUB_OFFLINE=1 exec .venv/bin/python scripts/mutation.py "$@"
