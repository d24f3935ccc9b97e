#!/usr/bin/env bash
# Open a ckpk report in headless Chromium (Debian's package) and save a screenshot, to see
# that it renders: the page loads, its navigation and categories show.
#
#   docs/tools/report_screenshot.sh [REPORT.html] [OUT.png]
#
# Defaults: results/report.html (written by `make run`) and results/report.png. Installs
# Debian's chromium when it is missing (needs root). Chromium runs with no network access
# of its own (the report is one self-contained file).
set -euo pipefail
REPORT=$(realpath "${1:-results/report.html}")
OUT=$(realpath -m "${2:-results/report.png}")
[ -s "$REPORT" ] || { echo "report_screenshot: $REPORT is missing; run make run first" >&2; exit 1; }
if ! command -v chromium >/dev/null 2>&1; then
  apt-get install -y -q chromium >/dev/null
fi
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --window-size=1400,1000 --virtual-time-budget=15000 \
  --screenshot="$OUT" "file://$REPORT" 2>/dev/null
test -s "$OUT"
echo "report_screenshot: $OUT"
