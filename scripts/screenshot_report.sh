#!/usr/bin/env bash
# Render a dry-run report in headless Chromium (Debian's `chromium` package)
# and save a PNG, to look at what a strategist sees.
#   scripts/screenshot_report.sh out/report.html report.png
set -euo pipefail
report="$(realpath "$1")"
png="${2:-report.png}"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --window-size=1400,2600 --virtual-time-budget=5000 \
  --screenshot="$png" "file://$report" >/dev/null 2>&1
echo "$png"
