#!/bin/sh
# Deploy: pull the newest code into the app's checkout, reload procmaster
# gracefully and wait for the outcome. Exit 0 once the new code serves; when the
# new code does not load (a syntax error, a missing module) the reload is aborted,
# the old workers go on serving, and this exits 1 with procmaster's reason.
#   DEPLOY_DIR=/srv/site configs/deploy/deploy.sh
# APP_DIR (default DEPLOY_DIR/app), PIDFILE (default DEPLOY_DIR/run/site.pid: the
# pidfile of production.ini) and PROCMASTER (default: procmaster on PATH) may be set.
set -eu
: "${DEPLOY_DIR:?set DEPLOY_DIR: the app checkout is DEPLOY_DIR/app}"
APP_DIR="${APP_DIR:-$DEPLOY_DIR/app}"
PIDFILE="${PIDFILE:-$DEPLOY_DIR/run/site.pid}"
PROCMASTER="${PROCMASTER:-procmaster}"
git -C "$APP_DIR" pull --ff-only --quiet
version=$(git -C "$APP_DIR" rev-parse --short HEAD)
if "$PROCMASTER" --reload "$PIDFILE" --wait; then
    echo "deployed $version: the new workers serve it"
else
    echo "deploy of $version FAILED: procmaster kept the previous version serving (see above)" >&2
    exit 1
fi
