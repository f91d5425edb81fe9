# The example site (configs/hello.py) served by procmaster, as configs/kubernetes/
# deploys it (see README "On Kubernetes"):
#   docker build -t procmaster-hello .
#   docker run --rm -e UWSGI_HTTP_SOCKET=:8000 -p 8000:8000 -p 9191:9191 procmaster-hello
# (the second socket lets you try it without the nginx sidecar: curl localhost:8000/)
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# procmaster itself, from this checkout
WORKDIR /build
COPY pyproject.toml README.md ./
COPY procmaster ./procmaster
RUN pip install --no-cache-dir /build \
    && rm -rf /build

# the site, owned by root and read-only for the user that runs it
WORKDIR /srv/site
COPY configs/hello.py configs/kubernetes/site.ini ./
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin site
USER 10001:10001

# 3031: the uwsgi protocol for the nginx sidecar; 9191: stats, /ready, /live
EXPOSE 3031 9191
# SIGTERM is procmaster's graceful stop (in-flight and queued requests are served)
STOPSIGNAL SIGTERM
CMD ["procmaster", "--ini", "/srv/site/site.ini"]
