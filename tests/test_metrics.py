"""``GET /metrics``: off by default, open to a bearer token or listed addresses only, and the
counts it shows follow what happened (each test compares before and after: the metrics of
one process add up across the tests it runs)."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from authsvc import create_app
from authsvc.config import validate_config
from authsvc.db.services import services_of
from authsvc.errors import ConfigError
from authsvc.pki.certs import CertPaths
from authsvc.pki.notification_secret import ensure_secret
from authsvc.server import serve
from authsvc.web.metrics import RequestTimer
from tests.api_helpers import new_token
from tests.conftest import PASSWORD, TEST_CONFIG
from tests.test_registry_events import envelope, go_event, manifest_target
from tests.token_helpers import get_token

TOKEN = "metrics-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
#: Metrics on: requests are timed from the app's start.
ON = pytest.mark.app_config(METRICS_TOKEN=TOKEN)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: FlaskClient, headers: dict[str, str] = BEARER) -> Samples:
    """Every sample of ``/metrics`` by name and labels; asserts a 200 in the text format."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples) -> dict[str, float]:
    """The samples that changed, as ``name{label=value}`` (no ``_bucket`` or ``_sum``)."""
    changed = {}
    for key in after.keys() | before.keys():
        name, labels = key
        if name.endswith(("_bucket", "_sum")) or after.get(key, 0) == before.get(key, 0):
            continue
        shown = ",".join(f"{k}={v}" for k, v in labels)
        changed[f"{name}{{{shown}}}"] = after.get(key, 0) - before.get(key, 0)
    return changed


# -- who may scrape --------------------------------------------------------------------------


def test_metrics_are_off_by_default(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404


def test_off_means_no_request_timing(app: Flask) -> None:
    assert not isinstance(app.wsgi_app, RequestTimer)


@pytest.mark.app_config(METRICS_TOKEN=TOKEN)
@pytest.mark.parametrize(("headers", "status"), [
    ({}, 401),
    ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, 401),
    ({"Authorization": f"Bearer {TOKEN}x"}, 401),
    ({"Authorization": f"Basic {TOKEN}"}, 401),
    ({"Authorization": "Bearer"}, 401),
    (BEARER, 200),
])
def test_the_token_opens_metrics(client: FlaskClient, headers: dict[str, str],
                                 status: int) -> None:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    assert TOKEN not in response.get_data(as_text=True)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="authsvc metrics"'


@pytest.mark.parametrize(("settings", "peer", "forwarded", "status"), [
    ({"METRICS_ALLOW": ["127.0.0.1"]}, "127.0.0.1", None, 200),
    ({"METRICS_ALLOW": "10.0.0.0/8, 192.168.1.7"}, "10.9.8.7", None, 200),
    ({"METRICS_ALLOW": ["10.0.0.0/8"]}, "127.0.0.1", None, 403),
    # a client cannot choose its address; a listed proxy forwards it
    ({"METRICS_ALLOW": ["10.0.0.0/8"]}, "127.0.0.1", "10.1.2.3", 403),
    ({"METRICS_ALLOW": ["10.0.0.0/8"], "TRUSTED_PROXIES": ["127.0.0.1"]}, "127.0.0.1",
     "10.1.2.3", 200),
    # listed addresses need no token; others still may bring it
    ({"METRICS_ALLOW": ["10.0.0.0/8"], "METRICS_TOKEN": TOKEN}, "10.0.0.1", None, 200),
    ({"METRICS_ALLOW": ["10.0.0.0/8"], "METRICS_TOKEN": TOKEN}, "127.0.0.1", None, 401),
])
def test_listed_addresses_scrape_without_a_token(
        tmp_path: Path, certs_dir: Path, monkeypatch: pytest.MonkeyPatch,
        settings: dict[str, Any], peer: str, forwarded: str | None, status: int) -> None:
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs_dir))
    app = create_app({**TEST_CONFIG, **settings})
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = app.test_client().get("/metrics", headers=headers,
                                     environ_base={"REMOTE_ADDR": peer})
    assert response.status_code == status, response.get_data(as_text=True)


@pytest.mark.parametrize(("settings", "message"), [
    ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be empty or at least 16"),
    ({"METRICS_TOKEN": "has a space in it, sixteen+"}, "METRICS_TOKEN must be"),
    ({"METRICS_TOKEN": 1234567890123456789}, "METRICS_TOKEN must be"),
    ({"METRICS_ALLOW": ["10.0.0.1/8"]}, "METRICS_ALLOW: '10.0.0.1/8'"),
    ({"METRICS_ALLOW": "localhost"}, "METRICS_ALLOW: 'localhost'"),
    ({"METRICS_ALLOW": 7}, "METRICS_ALLOW must be a list"),
])
def test_bad_settings_are_named(app: Flask, settings: dict[str, Any], message: str) -> None:
    config = {**app.config, **settings}
    with pytest.raises(ConfigError) as raised:
        validate_config(config)
    assert message in str(raised.value)
    assert "short" not in str(raised.value) and "sixteen" not in str(raised.value)


# -- what is counted -------------------------------------------------------------------------


@pytest.fixture
def metrics_app(app: Flask) -> Flask:
    """The test app (metrics on: mark the test ``ON``), alice and her public repository."""
    assert isinstance(app.wsgi_app, RequestTimer)
    with app.app_context():
        state = services_of(app)
        state.accounts.create_user("alice", PASSWORD)
        state.repos.create("alice/pub", visibility="public")
    return app


@ON
def test_tokens_are_counted_by_grant_type(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    before = scrape(client)
    scope = "repository:alice/pub:pull"
    assert get_token(client, scope).status_code == 200
    assert get_token(client, scope).status_code == 200
    answer = get_token(client, scope, auth=("alice", PASSWORD), offline_token="true",
                       client_id="t")
    assert answer.status_code == 200
    form = {"service": "registry", "client_id": "t", "scope": scope}
    assert client.post("/token", data={**form, "grant_type": "password", "username": "alice",
                                       "password": PASSWORD}).status_code == 200
    assert client.post("/token", data={**form, "grant_type": "refresh_token",
                                       "refresh_token": answer.json["refresh_token"]},
                       ).status_code == 200
    access_token = new_token(client)
    assert get_token(client, scope, auth=("alice", access_token)).status_code == 200
    changed = delta(before, scrape(client))
    assert {k: v for k, v in changed.items() if k.startswith("authsvc_tokens")} == {
        "authsvc_tokens_issued_total{grant_type=anonymous}": 2,
        "authsvc_tokens_issued_total{grant_type=password}": 2,
        "authsvc_tokens_issued_total{grant_type=refresh_token}": 1,
        "authsvc_tokens_issued_total{grant_type=access_token}": 1,
    }


@ON
def test_refusals_are_counted_by_reason(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    before = scrape(client)
    scope = "repository:alice/pub:pull"
    assert get_token(client, scope, auth=("alice", "wrong")).status_code == 401
    assert get_token(client, scope, service="other").status_code == 400
    assert get_token(client, "repository:alice/pub").status_code == 400
    assert client.post("/token", data={"grant_type": "magic"}).status_code == 400
    assert client.post("/token", data={"grant_type": "password", "service": "registry",
                                       "client_id": "t", "username": "alice",
                                       "password": "wrong"}).status_code == 401
    changed = delta(before, scrape(client))
    assert {k: v for k, v in changed.items() if k.startswith("authsvc_tokens")} == {
        "authsvc_tokens_refused_total{reason=bad_credentials}": 2,
        "authsvc_tokens_refused_total{reason=bad_request}": 3,
    }


@pytest.mark.app_config(METRICS_TOKEN=TOKEN, LOCKOUT_ATTEMPTS=2, LOCKOUT_STORE="memory")
def test_lockouts_are_counted(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    before = scrape(client)
    statuses = [get_token(client, auth=("alice", "wrong")).status_code for _ in range(4)]
    assert statuses == [401, 401, 429, 429]
    changed = delta(before, scrape(client))
    assert changed["authsvc_lockouts_total{kind=account}"] == 2
    assert changed["authsvc_tokens_refused_total{reason=locked_out}"] == 2


def test_database_errors_are_counted(tmp_path: Path, certs_dir: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable database: /token answers 503, counted as a refusal and a database
    error (scraped from an app whose database works: the values are the process's)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AUTHSVC_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("AUTHSVC_CERTS_DIR", str(certs_dir))
    settings = {**TEST_CONFIG, "METRICS_TOKEN": TOKEN}
    working = create_app(settings).test_client()
    broken = create_app({**settings, "DATABASE_URL": f"postgresql+psycopg://u@127.0.0.1:{port}/x",
                         }).test_client()
    before = scrape(working)
    assert broken.get("/token", query_string={"service": "registry"},
                      auth=("alice", "pw")).status_code == 503
    changed = delta(before, scrape(working))
    assert changed["authsvc_database_errors_total{}"] == 1
    assert changed["authsvc_tokens_refused_total{reason=database_unavailable}"] == 1


@pytest.fixture(name="certs_dir")
def private_certs_dir(certs_dir: Path, tmp_path: Path) -> Path:
    """The test certificates with a notification secret of this test's own."""
    import shutil

    mine = tmp_path / "certs"
    shutil.copytree(certs_dir, mine)
    CertPaths(mine).notification_secret.unlink(missing_ok=True)
    ensure_secret(CertPaths(mine).notification_secret)
    return mine


@ON
def test_registry_notifications_are_counted_by_outcome(metrics_app: Flask,
                                                       certs_dir: Path) -> None:
    client = metrics_app.test_client()
    secret = ensure_secret(CertPaths(certs_dir).notification_secret)[0].current
    kind = "application/vnd.docker.distribution.events.v2+json"

    def post(body: bytes, token: str | None = secret) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post("/api/v1/registry/events", data=body, content_type=kind,
                           headers=headers).status_code

    push = go_event("push", manifest_target("alice/app", tag="v1"), method="PUT",
                    event_id="e1")
    before = scrape(client)
    assert post(envelope(push), token=None) == 401
    assert post(envelope(push), token="wrong") == 401
    assert post(b"{not json") == 400
    assert post(envelope(push)) == 200
    assert post(envelope(push)) == 200  # sent again: a duplicate
    assert post(envelope({"id": "e2"})) == 200  # malformed event: rejected
    changed = delta(before, scrape(client))
    assert {k: v for k, v in changed.items() if "notifications" in k} == {
        "authsvc_registry_notifications_total{outcome=unauthorized}": 2,
        "authsvc_registry_notifications_total{outcome=malformed}": 1,
        "authsvc_registry_notifications_total{outcome=recorded}": 1,
        "authsvc_registry_notifications_total{outcome=duplicate}": 1,
        "authsvc_registry_notifications_total{outcome=rejected}": 1,
    }


@ON
def test_latency_is_observed_by_route_name_never_path(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    before = scrape(client)
    assert get_token(client, "repository:alice/pub:pull").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/repositories/alice/pub").status_code == 200
    assert client.get("/no/such/alice/secret-thing").status_code == 404
    after = scrape(client)
    counts = {k: v for k, v in delta(before, after).items()
              if k.startswith("authsvc_request_duration_seconds_count")}
    assert counts == {
        "authsvc_request_duration_seconds_count{route=token}": 1,
        "authsvc_request_duration_seconds_count{route=health.healthz}": 1,
        "authsvc_request_duration_seconds_count{route=admin.get_repository}": 1,
        "authsvc_request_duration_seconds_count{route=unmatched}": 1,
        # the first scrape is timed once it has answered
        "authsvc_request_duration_seconds_count{route=metrics.scrape}": 1,
    }
    labels = {v for (_, labels) in after for _, v in labels}
    assert not any("alice" in label or "/" in label for label in labels)
    token_buckets = [v for (name, labels), v in after.items() if name.endswith("_bucket")
                     and ("route", "token") in labels]
    assert token_buckets == sorted(token_buckets) and token_buckets[-1] >= 1


@ON
def test_active_web_sessions_are_read_at_scrape_time(metrics_app: Flask) -> None:
    client = metrics_app.test_client()
    assert value(scrape(client), "authsvc_web_sessions_active") == 0
    with metrics_app.app_context():
        sessions = services_of(metrics_app).web_sessions
        sessions.create("alice")
        sessions.create("alice")
    assert value(scrape(client), "authsvc_web_sessions_active") == 2


# -- several processes -----------------------------------------------------------------------

COUNT_IN_A_PROCESS = """
import sys
from pathlib import Path
from authsvc.observability.metrics import metrics, use_multiprocess, mark_process_dead
use_multiprocess(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    metrics().tokens_issued["anonymous"].inc()
metrics().observe_request("token", 0.002)
"""

SCRAPE_IN_A_PROCESS = """
import sys
from pathlib import Path
from authsvc.observability.metrics import exposition, use_multiprocess
use_multiprocess(Path(sys.argv[1]))
sys.stdout.write(exposition().decode())
"""


def run_python(code: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, check=True, timeout=60)
    return done.stdout


def test_a_scrape_adds_up_every_process(tmp_path: Path) -> None:
    run_python(COUNT_IN_A_PROCESS, str(tmp_path), "3")
    run_python(COUNT_IN_A_PROCESS, str(tmp_path), "4")
    text = run_python(SCRAPE_IN_A_PROCESS, str(tmp_path))
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert value(samples, "authsvc_tokens_issued_total", grant_type="anonymous") == 7
    assert value(samples, "authsvc_request_duration_seconds_count", route="token") == 2
    assert value(samples, "authsvc_tokens_issued_total", grant_type="password") == 0
    assert len(list(tmp_path.glob("counter_*.db"))) == 3  # one per process, the scraper's too


def test_each_serve_run_gets_a_private_clean_folder(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[Callable[[], Any]] = []
    monkeypatch.setattr(serve.atexit, "register",
                        lambda f, *a: exits.append(lambda: f(*a)))
    base = tmp_path / serve.METRICS_FOLDER
    stale = base / "999999999"  # no such process
    alive = base / "1"  # init: another run still going
    for folder in (stale, alive):
        folder.mkdir(parents=True)
        (folder / "counter_5.db").write_bytes(b"x")
    directory = serve.metrics_directory(tmp_path)
    assert directory == base / str(os.getpid())
    assert not stale.exists() and alive.exists() and list(directory.iterdir()) == []
    assert (base.stat().st_mode & 0o777, directory.stat().st_mode & 0o777) == (0o700, 0o700)
    (exit_handler,) = exits
    exit_handler()
    assert not directory.exists()
