"""A stand-in for your application, to try configs/deploy from a fresh clone:

    mkdir -p $DEPLOY_DIR/app && cp configs/deploy/example-app/wsgi.py $DEPLOY_DIR/app/
    git -C $DEPLOY_DIR/app init && git -C $DEPLOY_DIR/app add . && git -C $DEPLOY_DIR/app commit -m v1

(deploy.sh pulls from the checkout's upstream: clone it from your repository instead.)
"""

VERSION = "1"


def application(environ: dict, start_response) -> list[bytes]:
    body = f"version {VERSION}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
