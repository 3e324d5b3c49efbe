#!/usr/bin/env bash
# Mutation testing (mutmut) of the contract, standards, rules, spool and accounting modules: see docs/testing.md.
set -euo pipefail
exec python "$(dirname "$0")/mutation.py" "$@"
