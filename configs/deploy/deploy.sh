#!/bin/sh
# Deploy: pull the newest code into the app's checkout and touch reload_me.txt;
# procmaster (touch-reload in production.ini) reloads gracefully.
#   DEPLOY_DIR=/srv/site configs/deploy/deploy.sh
set -eu
APP_DIR="${APP_DIR:-${DEPLOY_DIR:?set DEPLOY_DIR: the app checkout is DEPLOY_DIR/app}/app}"
git -C "$APP_DIR" pull --ff-only --quiet
touch "$APP_DIR/reload_me.txt"
echo "deployed $(git -C "$APP_DIR" rev-parse --short HEAD): procmaster reloads gracefully"
