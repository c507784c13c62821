"""A network namespace joined to the host by a veth pair, for servers on a non-loopback address.

Debian's dockerd treats 127.0.0.0/8 as an insecure registry and checks no
certificate there. Servers started inside a namespace of our own, on an
address of a /30 in 10.213.0.0/16, are reached from the host through the
veth pair like any remote registry, so dockerd verifies TLS for them.

:func:`network_namespace` always deletes what it made (namespace, veth pair),
even when the test fails; the processes inside must be stopped first, which
fixtures ensure by stopping them before leaving the context.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

IP = shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/usr/sbin/ip"
NETNS_RUN_DIR = Path("/run/netns")
TEST_NETWORK = ipaddress.IPv4Network("10.213.0.0/16")
PREFIX = 30
ATTEMPTS = 20
GONE_TIMEOUT = 10.0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise with its output on failure when ``check``."""
    done = subprocess.run([IP, *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed ({done.returncode}): "
                           f"{done.stderr.strip() or done.stdout.strip()}")
    return done


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """Return the IPv4 networks of every address and route in the host namespace."""
    used: list[ipaddress.IPv4Network] = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            used.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        first = line.split()[0] if line.split() else ""
        with contextlib.suppress(ValueError):
            if first not in ("default", "broadcast", "local", "unreachable"):
                used.append(ipaddress.IPv4Network(first, strict=False))
    return used


def _free_subnet() -> ipaddress.IPv4Network:
    """Pick a random /30 in 10.213.0.0/16 that overlaps no address or route of the host."""
    used = _networks_in_use()
    for _ in range(ATTEMPTS):
        third = random.randrange(256)
        fourth = random.randrange(0, 256, 4)
        subnet = ipaddress.IPv4Network(f"10.213.{third}.{fourth}/{PREFIX}")
        assert subnet.subnet_of(TEST_NETWORK)
        if not any(subnet.overlaps(net) for net in used if net.prefixlen > 0):
            return subnet
    raise RuntimeError(f"no free /{PREFIX} found in {TEST_NETWORK}")


@dataclass(frozen=True)
class NetNamespace:
    """Namespace ``name``: its veth end has ``address``, the host end ``host_address``."""

    name: str
    host_interface: str
    host_address: str
    address: str

    def argv(self, argv: Sequence[str]) -> list[str]:
        """Return ``argv`` prefixed so that it runs inside the namespace.

        ``ip netns exec`` execs the command in place, so the started process's
        PID is the command's own and stopping it by PID works as usual.
        """
        return [IP, "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the namespace to completion."""
        return subprocess.run(self.argv(argv), capture_output=True, text=True, check=False)

    def pids(self) -> list[int]:
        """Return the PIDs of the processes running inside the namespace."""
        done = _ip("netns", "pids", self.name, check=False)
        return [int(word) for word in done.stdout.split() if word.isdigit()]


def _wait_gone(interface: str) -> None:
    """Wait until the kernel has removed ``interface`` (namespace deletion is asynchronous)."""
    deadline = time.monotonic() + GONE_TIMEOUT
    while time.monotonic() < deadline:
        if _ip("link", "show", interface, check=False).returncode != 0:
            return
        time.sleep(0.1)


@contextlib.contextmanager
def network_namespace() -> Iterator[NetNamespace]:
    """Create a namespace and veth pair on a free /30, yield it, and always delete both."""
    made_run_dir = not NETNS_RUN_DIR.exists()
    token = secrets.token_hex(3)
    name = f"authsvc-e2e-{token}"
    host_if, ns_if = f"ae{token}h", f"ae{token}n"  # interface names: at most 15 characters
    subnet = _free_subnet()
    host_ip, ns_ip = (str(host) for host in subnet.hosts())
    made_ns = made_link = False
    try:
        _ip("netns", "add", name)
        made_ns = True
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        made_link = True
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{host_ip}/{PREFIX}", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", name, "addr", "add", f"{ns_ip}/{PREFIX}", "dev", ns_if)
        _ip("-n", name, "link", "set", ns_if, "up")
        yield NetNamespace(name, host_if, host_ip, ns_ip)
    finally:
        if made_link:
            _ip("link", "del", host_if, check=False)  # removes the peer too
        if made_ns:
            # Fixtures stop their servers first; anything still inside was started by this
            # test in this namespace of its own, so end it by PID before deleting the namespace.
            for pid in NetNamespace(name, host_if, host_ip, ns_ip).pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _ip("netns", "del", name, check=False)
        if made_link:
            _wait_gone(host_if)
        if made_run_dir and NETNS_RUN_DIR.exists() and not any(NETNS_RUN_DIR.iterdir()):
            # `ip netns add` made /run/netns a mount point of its own; undo that too.
            subprocess.run(["umount", str(NETNS_RUN_DIR)], capture_output=True, check=False)
            with contextlib.suppress(OSError):
                NETNS_RUN_DIR.rmdir()
