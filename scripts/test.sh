#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run every test.
# Python packages go into a virtual environment: the active one, else .venv in the repository (created here;
# Debian's own Python refuses system-wide pip installs). Works as root and as a user (apt-get through sudo).
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
# Daemons the tests start (nginx, runuser for PostgreSQL) live in sbin, which a user's PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
command -v podman >/dev/null || need+=(podman)
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v sqlite3 >/dev/null || need+=(sqlite3)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
if [ -z "${VIRTUAL_ENV:-}" ] && [ ! -x .venv/bin/python ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Azurite, Microsoft's Azure Blob emulator, for the object storage tests (npm; Node.js from Debian).
if ! command -v azurite-blob >/dev/null; then
  command -v npm >/dev/null || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null; }
  $SUDO npm install -g --silent azurite
fi
# The Debian packages may start a registry service on :5000 and nginx on :80; tests start their own on free ports.

if [ -n "${VIRTUAL_ENV:-}" ]; then
  venv="$VIRTUAL_ENV"
else
  venv="$PWD/.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
fi
export PATH="$venv/bin:$PATH"  # the tests run the venv's dockyard console script
python="$venv/bin/python"
"$python" -m pip install -q --disable-pip-version-check -e '.[dev]'
"$python" -m ruff check src tests benchmarks
"$python" scripts/unasync.py --check
"$python" -m mypy src/dockyard
exec "$python" -m pytest -q -p no:cacheprovider "$@"
