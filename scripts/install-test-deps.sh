#!/usr/bin/env bash
# System packages the tests need (run as root; idempotent): headless Chromium renders the report in
# tests/test_report.py (which skips without it unless LANGMIX_REQUIRE_BROWSER=1).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
