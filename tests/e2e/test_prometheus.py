"""A real Prometheus scrapes a real ``authsvc serve`` (2 workers) over HTTPS with the bearer
token and authsvc's CA, and its counters equal the traffic sent, summed across the workers."""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import _running_in_ci
from .processes import free_port, start_service, wait_for
from .servers import ADMIN, Replica, Site, make_site, replica

pytestmark = pytest.mark.e2e

TOKEN = "e2e-metrics-token-5f0b8a1c2d3e4f60"
ANONYMOUS, PASSWORD, BAD_CREDENTIALS, BAD_REQUEST = 7, 3, 1, 1
SCRAPE_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    """Debian's ``prometheus``; skipped when missing, a failure when CI is set."""
    found = shutil.which("prometheus")
    if found is None:
        message = "prometheus is not installed (scripts/test installs the Debian package)"
        if _running_in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("metrics"), METRICS_TOKEN=TOKEN)


@pytest.fixture(scope="module")
def served(site: Site) -> Iterator[Replica]:
    with replica(site, "authsvc", workers=2) as running:
        yield running


def new_connection_get(server: Replica, path: str, headers: dict[str, str] | None = None,
                       **kwargs: Any) -> requests.Response:
    """One request on a connection of its own, so the two workers share the traffic."""
    with server.session() as session:
        return session.get(server.url + path, headers={"Connection": "close", **(headers or {})},
                           timeout=10, **kwargs)


#: The traffic of one batch: (request, expected status).
BATCH: list[tuple[dict[str, Any], int]] = (
    [({"params": {"service": "registry"}}, 200)] * ANONYMOUS
    + [({"params": {"service": "registry"}, "auth": ADMIN}, 200)] * PASSWORD
    + [({"params": {"service": "registry"}, "auth": (ADMIN[0], "wrong")}, 401)]
    * BAD_CREDENTIALS
    + [({}, 400)] * BAD_REQUEST)
MAX_BATCHES = 10


def tokens_counted_by_worker(folder: Path) -> list[float]:
    """The tokens each worker counted, read from its own file (prometheus_client's)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    counted = []
    for path in sorted(folder.glob("counter_*.db")):
        metrics = MultiProcessCollector.merge([str(path)], accumulate=False)  # type: ignore[no-untyped-call]
        counted.append(sum(sample.value for metric in metrics for sample in metric.samples
                           if sample.name == "authsvc_tokens_issued_total"))
    return counted


@pytest.fixture(scope="module")
def batches(site: Site, served: Replica) -> int:
    """Batches of 7 anonymous tokens, 3 password tokens, a wrong password and a missing
    service, each sent at once (every request on a connection of its own), until both
    workers have issued tokens (the kernel may hand one worker every connection of a batch);
    returns how many batches were sent."""
    folder = site.root / "instance" / "metrics" / str(served.service.pid)
    for sent in range(1, MAX_BATCHES + 1):
        with ThreadPoolExecutor(len(BATCH)) as pool:
            statuses = list(pool.map(lambda one: new_connection_get(
                served, "/token", **one[0]).status_code, BATCH))
        assert statuses == [status for _, status in BATCH]
        by_worker = tokens_counted_by_worker(folder)
        if len(by_worker) == 2 and all(by_worker):
            return sent
    pytest.fail(f"one worker took every connection of {MAX_BATCHES} batches: {by_worker}")


def test_both_workers_count_into_one_private_folder(site: Site, served: Replica,
                                                    batches: int) -> None:
    (folder,) = (site.root / "instance" / "metrics").iterdir()
    assert folder.name == str(served.service.pid)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert sum(tokens_counted_by_worker(folder)) == batches * (ANONYMOUS + PASSWORD)


def test_metrics_need_the_token(served: Replica) -> None:
    assert new_connection_get(served, "/metrics").status_code == 401
    answer = new_connection_get(served, "/metrics",
                                headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200 and "authsvc_tokens_issued_total" in answer.text


@pytest.fixture(scope="module")
def prometheus(prometheus_binary: str, served: Replica, batches: int,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus scraping authsvc every second; yields its URL."""
    root = tmp_path_factory.mktemp("prometheus")
    token_file = root / "metrics-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    config = {"global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
              "scrape_configs": [{
                  "job_name": "authsvc", "scheme": "https",
                  "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                  "tls_config": {"ca_file": str(served.ca)},
                  "static_configs": [{"targets": [urllib.parse.urlsplit(served.url).netloc]}],
              }]}
    config_path = root / "prometheus.yml"
    config_path.write_text(json.dumps(config))  # YAML reads JSON
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service("prometheus", [
        prometheus_binary, f"--config.file={config_path}", f"--storage.tsdb.path={root / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}"], {}, root / "prometheus.log", root)
    try:
        wait_for(service, lambda: ready(url), "ready", SCRAPE_TIMEOUT)
        yield url
    finally:
        service.stop()


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except OSError:
        return False


def query(url: str, promql: str) -> dict[str, float]:
    """The instant vector of ``promql``, by the value of its one label (or "" for none)."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(address, timeout=5) as answer:  # noqa: S310
        body = json.load(answer)
    assert body["status"] == "success", body
    return {next(iter(r["metric"].values()), ""): float(r["value"][1])
            for r in body["data"]["result"]}


def scraped(url: str, promql: str, expected: dict[str, float]) -> dict[str, float]:
    """``query`` once a scrape gave ``expected`` (or the last answer at the timeout)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    found = query(url, promql)
    while found != expected and time.monotonic() < deadline:
        time.sleep(0.5)
        found = query(url, promql)
    return found


def test_prometheus_counts_the_traffic_sent(prometheus: str, batches: int) -> None:
    assert scraped(prometheus, 'sum(up{job="authsvc"})', {"": 1}) == {"": 1}
    issued = 'sum by (grant_type) (authsvc_tokens_issued_total{job="authsvc"})'
    expected = {"anonymous": batches * ANONYMOUS, "password": batches * PASSWORD,
                "access_token": 0, "refresh_token": 0}
    assert scraped(prometheus, issued, expected) == expected
    refused = 'sum by (reason) (authsvc_tokens_refused_total{job="authsvc"}) > 0'
    expected = {"bad_credentials": batches * BAD_CREDENTIALS,
                "bad_request": batches * BAD_REQUEST}
    assert scraped(prometheus, refused, expected) == expected
    timed = 'sum by (route) (authsvc_request_duration_seconds_count{route="token"})'
    expected = {"token": batches * len(BATCH)}
    assert scraped(prometheus, timed, expected) == expected


def test_a_stopped_server_leaves_no_metrics_folder(site: Site, served: Replica,
                                                   prometheus: str) -> None:
    """Last in the module: stops authsvc (the fixture's stop then finds it stopped)."""
    served.service.stop()
    assert list((site.root / "instance" / "metrics").iterdir()) == []
