#!/usr/bin/env bash
# The README's first command: install sitewatch into .venv and run the whole chain on embedded defaults.
# Extra arguments go to `sitewatch demo` (see `sitewatch demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/sitewatch demo "$@"
