#!/usr/bin/env bash
# The README's test command: install what the tests need, then run lint, types, layers and the whole suite.
#   - Debian packages for the real services (Mosquitto, InfluxDB, PostgreSQL), Mosquitto's
#     command-line clients, and Chromium with CJK fonts for the console's browser tests, when missing;
#   - a virtual environment in .venv with sitewatch and its test extras.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k contract`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)  # the ingest benchmark's load
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the console's browser tests (Playwright drives it)
compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK*" >/dev/null || missing+=(fonts-noto-cjk)  # Chinese on pages and screenshots
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"; .venv/bin/ruff check .
echo "== mypy"; .venv/bin/mypy
echo "== lint-imports"; .venv/bin/lint-imports --no-cache
# two workers, each module's tests on one of them (its module fixtures made once); each worker
# starts its own Mosquitto, InfluxDB and PostgreSQL on free ports
echo "== pytest"; .venv/bin/pytest -n 2 --dist loadscope "$@"
