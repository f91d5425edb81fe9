#!/bin/sh
# Lay out a DEPLOY_DIR that configs/deploy works with, from nothing:
#   DEPLOY_DIR/origin.git  a bare repository: "your repository" (seeded with example-app/)
#   DEPLOY_DIR/app         the checkout procmaster serves (APP_DIR), tracking origin/main
#   DEPLOY_DIR/dev         your own clone: commit and push new versions from here
#   DEPLOY_DIR/log         supervisord's and procmaster's logs
#   DEPLOY_DIR/run         pidfiles and supervisord's socket
# Usage:  DEPLOY_DIR=/tmp/site configs/deploy/setup.sh
# Parts that exist already are left as they are (run it again safely).
set -eu
: "${DEPLOY_DIR:?set DEPLOY_DIR, e.g. export DEPLOY_DIR=/tmp/site}"
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DEPLOY_DIR/log" "$DEPLOY_DIR/run"
DEPLOY_DIR=$(cd "$DEPLOY_DIR" && pwd)
ME="-c user.name=deploy-setup -c user.email=deploy-setup@localhost"

if [ ! -d "$DEPLOY_DIR/origin.git" ]; then
    git init -q --bare -b main "$DEPLOY_DIR/origin.git"
    seed=$(mktemp -d)
    git init -q -b main "$seed"
    cp "$HERE/example-app/wsgi.py" "$seed/"
    git -C "$seed" add wsgi.py
    # shellcheck disable=SC2086
    git -C "$seed" $ME commit -q -m "version 1 of the example app"
    git -C "$seed" push -q "$DEPLOY_DIR/origin.git" main
    rm -rf "$seed"
fi
for checkout in app dev; do
    if [ ! -d "$DEPLOY_DIR/$checkout/.git" ]; then
        git clone -q "$DEPLOY_DIR/origin.git" "$DEPLOY_DIR/$checkout"
    fi
done
# commits in dev/ need a name: keep yours, else a local one
if ! git -C "$DEPLOY_DIR/dev" config user.email >/dev/null; then
    git -C "$DEPLOY_DIR/dev" config user.name "$(id -un)"
    git -C "$DEPLOY_DIR/dev" config user.email "$(id -un)@localhost"
fi
echo "DEPLOY_DIR=$DEPLOY_DIR is ready: origin.git, app (served), dev (yours), log, run"
