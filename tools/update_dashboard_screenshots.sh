#!/usr/bin/env bash
# Re-take the dashboard pictures in docs/images/dashboard/ from a run of the browser test
# (tests/browser/test_dashboard_browser.py): the test photographs every page it visits into
# ASYNCZ_SCREENSHOTS (1280x800 as NAME.png, the whole page as NAME.full.png); the docs keep the
# 1280x800 ones listed below. Needs Debian's chromium (/usr/bin/chromium) and the test extra.
#
#   tools/update_dashboard_screenshots.sh [PYTHON]     (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."

python="${1:-.venv/bin/python}"
pages=(login overview tasks task-create task-detail history timeline instances logs)

shots="$(mktemp -d)"
trap 'rm -rf "$shots"' EXIT

# CI=true: a missing browser fails the run instead of skipping it.
CI=true ASYNCZ_SCREENSHOTS="$shots" "$python" -m pytest -q -p no:cacheprovider \
    "tests/browser/test_dashboard_browser.py::test_operator_path"

mkdir -p docs/images/dashboard
for page in "${pages[@]}"; do
    cp "$shots/$page.png" "docs/images/dashboard/$page.png"
done
echo "updated docs/images/dashboard/: ${pages[*]}"
