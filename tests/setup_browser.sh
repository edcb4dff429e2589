#!/usr/bin/env bash
# Headless Chromium for the report's browser test (tests/reports/test_report_browser.py).
#
#   tests/setup_browser.sh     install Debian's `chromium` and `chromium-driver` with apt-get when
#                              either is missing, then print the path of the browser binary.
#
# Idempotent and quiet when both are present. Run as root (or with password-less sudo).
# Exit codes: 0 ok (the browser path is on stdout), 3 Chromium is missing and cannot be installed
# here (not root and no sudo, no apt-get, or the install failed).
set -euo pipefail

log() { echo "setup_browser: $*" >&2; }

find_browser() {
  local candidate
  for candidate in "${CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser "$(command -v chromium 2>/dev/null || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

have_all() {
  find_browser >/dev/null && { command -v chromedriver >/dev/null 2>&1 || [[ -x /usr/bin/chromedriver ]]; }
}

if ! have_all; then
  if ! command -v apt-get >/dev/null 2>&1; then
    log "chromium is missing and apt-get is not available: cannot install it"
    exit 3
  fi
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      log "chromium is missing and this user cannot install packages (needs root or password-less sudo)"
      exit 3
    fi
  fi
  log "installing chromium and chromium-driver with apt-get (this takes a while)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq chromium chromium-driver; } >&2; then
    log "apt-get could not install chromium"
    exit 3
  fi
fi

if ! browser=$(find_browser); then
  log "chromium is still missing after the install"
  exit 3
fi
echo "$browser"
