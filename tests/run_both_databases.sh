#!/usr/bin/env bash
# The whole test suite, twice: on SQLite (the default, embedded database), then on PostgreSQL (a
# throwaway cluster from Debian's postgresql package on loopback, tests/postgres_cluster.py),
# without the tests about SQLite itself (marker sqlite_only, see pyproject.toml). Both passes run
# even if the first fails; the exit status fails if either did. Arguments go to both pytest runs.
# Usage: bash tests/run_both_databases.sh [pytest arguments]   (.ci/run ends with it)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=("${TELECONSULT_TEST_PYTHON:-.venv/bin/python}" -m pytest -q -p no:cacheprovider)

status=0
start=$SECONDS
echo "== pass 1/2: SQLite"
"${PYTEST[@]}" "$@" || status=$?
echo "== pass 1/2 (SQLite) took $((SECONDS - start)) s"
start=$SECONDS
echo "== pass 2/2: PostgreSQL (-m 'not sqlite_only')"
TELECONSULT_TEST_DATABASE=postgresql "${PYTEST[@]}" -m "not sqlite_only" "$@" || status=$((status ? status : $?))
echo "== pass 2/2 (PostgreSQL) took $((SECONDS - start)) s"
exit "$status"
