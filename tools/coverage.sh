#!/usr/bin/env bash
# Line coverage of procmaster over the test suite, every process included: the
# tests' own, and each master, forked worker, re-executed master and vassal they
# start ([tool.coverage.run] in pyproject.toml: parallel data files, the
# subprocess/fork/_exit/execv patches of coverage >= 7.10). Under coverage the
# test support stops servers with SIGTERM first, so their data is written.
#
#   tools/coverage.sh                      # the whole suite (slow: ~2x the plain run)
#   tools/coverage.sh tests/unit tests/e2e/test_reload.py   # some of it
#
# The report is printed; the HTML one goes to .coverage-data/html/.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import coverage, sys; sys.exit(coverage.version_info < (7, 10))" 2>/dev/null \
  || pip install -q 'coverage>=7.10'
rm -rf .coverage-data && mkdir -p .coverage-data
python -m coverage run -m pytest -q -p no:randomly "${@:-tests}" || status=$?
python -m coverage combine -q
python -m coverage report --precision=1
python -m coverage html -q -d .coverage-data/html
exit "${status:-0}"
