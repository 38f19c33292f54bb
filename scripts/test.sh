#!/usr/bin/env bash
# The README's test command: creates .venv, installs requirements.lock and the distributions (requirements.in), runs ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# The exact versions of requirements.lock (hash-checked), then the distributions (requirements.in).
.venv/bin/python -m pip install --quiet -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps -r requirements.in
# Headless Chromium renders the main job's report in tests/pipeline/test_report.py (which fails
# without it): installed from Debian's packages when missing and running as root.
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium > /dev/null 2>&1 \
  && ! command -v chromium-browser > /dev/null 2>&1 && ! command -v google-chrome > /dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null 2>&1; then
    echo "installing chromium (apt-get) for tests/pipeline/test_report.py"
    APT_LOG="$(mktemp)"
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq > "$APT_LOG" 2>&1 \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium >> "$APT_LOG" 2>&1; then
      rm -f "$APT_LOG"
    else
      tail -n 20 "$APT_LOG" >&2
      echo "warning: apt-get could not install chromium (log: $APT_LOG); tests/pipeline/test_report.py will fail" >&2
    fi
  else
    echo "note: tests/pipeline/test_report.py needs Chromium: install it (Debian/Ubuntu: sudo apt-get install --no-install-recommends chromium) or set CHROMIUM to a Chromium or Chrome binary."
  fi
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
