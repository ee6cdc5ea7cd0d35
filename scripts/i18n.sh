#!/usr/bin/env bash
# Keep the zh_CN/en catalogs in step with the code (docs/i18n.md): extract every _()/N_() message,
# update both .po files (sorted, no locations, no dates), and list what still needs a translation.
# Then fill the empty zh_CN msgstr entries; `bash scripts/test.sh` fails until every one is done.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
"$python" -m sitewatch.devtools.i18n update
"$python" -m sitewatch.devtools.i18n check || true
