"""``--push``: what authsvc adds to a ``docker push``. A 50 MiB image (one layer of random
bytes, so nothing compresses it away) pushed by the real Docker engine (``DockerEngine``, as
the end-to-end tests run it) to two docker-registry servers alike but for auth: one with the
configuration ``authsvc registry-config`` prints (every push asks authsvc for tokens), one
with its ``auth`` and ``notifications`` sections taken out. Each push is of a new image to a
new repository, so that no layer is already there or mounted from another repository; the
two sides take turns, the order swapped every round. Target: the median push through auth
at most ``TARGET`` times the median push without."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # (pyyaml has no type hints)

from bench import procs
from bench.procs import BenchError, log
from bench.seed import PASSWORD, USER
from bench.servers import HOST, start_server, stop_servers, wait_ready
from bench.site import Site, make_site
from tests.e2e.clients import Credentials
from tests.e2e.docker_engine import CertsDir, DockerClient, DockerEngine, rootfs_tarball
from tests.e2e.processes import free_port, https_request

IMAGE_MIB = 50
PUSHES = 5
TARGET = 1.05
SIDES = ("no auth", "authsvc")


def push_mode(args: argparse.Namespace, tmp: Path, report: dict[str, Any], src: Path) -> bool:
    """Start authsvc, both registries and a Docker engine; push alternately; print the
    medians and their ratio. Returns whether the target was met."""
    if os.geteuid() != 0 or shutil.which("docker-registry") is None:
        raise BenchError("--push runs dockerd and docker-registry: run as root with the "
                         "Debian packages docker.io and docker-registry installed")
    port = free_port(HOST)
    site = make_site(tmp / "site", args.database, args.server_threads, src,
                     settings={**args.settings, "PUBLIC_URL": f"https://{HOST}:{port}"})
    server = start_server("authsvc", site, args, tmp, port)
    wait_ready(server, site.ca)
    started = {side: start_registry(site, tmp / side.replace(" ", "-"), side == "authsvc")
               for side in SIDES}
    registries = {side: address for side, (address, _) in started.items()}
    seconds: dict[str, list[float]] = {side: [] for side in SIDES}
    certs = CertsDir()
    try:
        with DockerEngine.running() as engine:
            for address in registries.values():
                certs.trust(address, site.ca)
            client = engine.client("bench")
            login = client.login(registries["authsvc"], Credentials(USER, PASSWORD))
            if login.returncode != 0:
                raise BenchError(f"docker login failed: {login.stderr[-500:]}")
            for round_ in range(PUSHES):
                order = SIDES if round_ % 2 == 0 else tuple(reversed(SIDES))
                for side in order:
                    seconds[side].append(timed_push(client, tmp, registries[side], side,
                                                    round_))
    finally:
        certs.cleanup()
        for _, process in started.values():
            procs.stop(process)
        stop_servers([server])
    medians = {side: statistics.median(values) for side, values in seconds.items()}
    ratio = medians["authsvc"] / medians["no auth"]
    met = ratio <= TARGET
    print(f"\n== docker push of a {IMAGE_MIB} MiB image (one layer), real Docker engine, "
          f"{PUSHES} pushes each, alternately; authsvc: granian, {args.workers} workers x "
          f"{args.server_threads} threads, {args.database}")
    for side in SIDES:
        print(f"  {side:<8} median {medians[side]:6.2f} s   pushes "
              + ", ".join(f"{s:.2f}" for s in seconds[side]))
    print(f"through authsvc / without auth: {ratio:.3f}x (target <= {TARGET:g}x: "
          f"{'met' if met else 'NOT met'})")
    report["push"] = {"image_mib": IMAGE_MIB, "seconds": seconds, "medians": medians,
                      "ratio": ratio, "met": met}
    return met


def start_registry(site: Site, root: Path, with_auth: bool,
                   ) -> tuple[str, subprocess.Popen[bytes]]:
    """A docker-registry on a free loopback port, with ``authsvc registry-config``'s
    configuration (without its auth and notifications when not ``with_auth``): its address
    and process, once it answers."""
    root.mkdir(parents=True)
    address = f"{HOST}:{free_port(HOST)}"
    printed = subprocess.run(  # noqa: S603 - our own console script
        [procs.executable("authsvc"), "registry-config", "--registry-addr", address,
         "--storage-dir", str(root / "storage")],
        env=site.env, cwd=site.root, capture_output=True, text=True, timeout=60, check=True)
    config = yaml.safe_load(printed.stdout)
    if not with_auth:
        config.pop("auth", None)
        config.pop("notifications", None)
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(config))
    binary = shutil.which("docker-registry") or "docker-registry"  # (push_mode checked it)
    # docker-registry applies REGISTRY_* variables as overrides: a clean environment, but
    # for the CA its notifications to authsvc trust
    process = procs.start([binary, "serve", str(path)], {"SSL_CERT_FILE": str(site.ca)}, root,
                          root / "registry.log")
    host, _, port = address.partition(":")
    deadline = time.monotonic() + 30
    expected = 401 if with_auth else 200
    while time.monotonic() < deadline:
        try:
            if https_request(host, int(port), site.ca, "GET", "/v2/", timeout=5)[0] == expected:
                log(f"registry ({'authsvc' if with_auth else 'no auth'}) on {address}")
                return address, process
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"docker-registry on {address} did not answer /v2/ with {expected}:\n"
                     f"{(root / 'registry.log').read_text()[-2000:]}")


def timed_push(client: DockerClient, tmp: Path, address: str, side: str, round_: int) -> float:
    """Import a new image of random bytes as ``ADDRESS/USER/push-N:v1``, push it; the
    seconds the push took."""
    name = f"{'auth' if side == 'authsvc' else 'plain'}-{round_}"
    folder = tmp / "images" / name
    tarball = rootfs_tarball(folder, "payload", os.urandom(IMAGE_MIB * 1024 * 1024))
    ref = f"{address}/{USER}/push-{name}:v1"
    client.ok("import", str(tarball), ref)
    shutil.rmtree(folder)
    started = time.monotonic()
    result = client.run("push", ref)
    took = time.monotonic() - started
    if result.returncode != 0:
        raise BenchError(f"docker push {ref} failed: {result.stderr[-1000:]}")
    client.ok("image", "rm", ref)
    log(f"push {side}, round {round_ + 1} of {PUSHES}: {took:.2f} s")
    return took
