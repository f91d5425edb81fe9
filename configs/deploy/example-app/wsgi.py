"""A stand-in for your application, to try configs/deploy from a fresh clone:
configs/deploy/setup.sh commits it as version 1 of DEPLOY_DIR/origin.git (the
stand-in for your repository) and clones that to DEPLOY_DIR/app (served) and
DEPLOY_DIR/dev (where you commit the next version). With your own application,
clone your repository to DEPLOY_DIR/app instead: deploy.sh pulls from its upstream.
"""

VERSION = "1"


def application(environ: dict, start_response) -> list[bytes]:
    body = f"version {VERSION}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
