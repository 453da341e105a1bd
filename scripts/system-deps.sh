#!/usr/bin/env bash
# Debian packages the tests use for real: Chromium (renders report.html) and PostgreSQL (a shared Optuna
# study; the test starts its own server on a free loopback port). Installed only when missing; without
# root (and no sudo) it says what is missing and those tests skip.
set -euo pipefail
need=()
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then apt=(apt-get); elif command -v sudo >/dev/null; then apt=(sudo apt-get); else
  echo "note: not root: install ${need[*]} (Debian) to run the report-rendering and PostgreSQL tests; they skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
"${apt[@]}" update -qq
"${apt[@]}" install -y -qq --no-install-recommends "${need[@]}" >/dev/null
