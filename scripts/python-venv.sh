#!/usr/bin/env bash
# Creates (or reuses) the project's Python venv at .venv with the packages the benchmark and
# the client tests use. Prints the venv's python path on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${SHOAL_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import duckdb, pyarrow, adbc_driver_flightsql, pytest, pandas, flightsql, psycopg" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/scripts/requirements.txt" >&2
fi
echo "$venv/bin/python"
