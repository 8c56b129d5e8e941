#!/usr/bin/env bash
# Fails when nbdev-clean or nbdev-export would change files: notebooks must be committed clean and
# the generated library in sync. Works on dirty trees too (compares content before and after).
set -euo pipefail
snap() { find nbs mlp_roadmap -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/_scratch/*' -print0 | sort -z | xargs -0 md5sum; }
before=$(snap)
nbdev-clean >/dev/null
after_clean=$(snap)
if [ "$before" != "$after_clean" ]; then
  diff <(echo "$before") <(echo "$after_clean") | grep '^>' | sed 's/^> [0-9a-f]* */  changed: /' || true
  echo "FAIL: notebooks were not clean. Run 'nbdev-clean' (or 'make test' again) and commit the result."
  exit 1
fi
nbdev-export >/dev/null
after_export=$(snap)
if [ "$after_clean" != "$after_export" ]; then
  diff <(echo "$after_clean") <(echo "$after_export") | grep '^>' | sed 's/^> [0-9a-f]* */  changed: /' || true
  echo "FAIL: the library was out of sync with the notebooks. Run 'nbdev-export' and commit mlp_roadmap/."
  exit 1
fi
echo "check-sync: notebooks clean, library in sync"
