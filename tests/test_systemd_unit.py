"""The systemd unit example, deploy/authsvc.service: `systemd-analyze verify` finds nothing to
say about it, `systemd-analyze security` rates its exposure low, and `authsvc serve` works
under the seccomp filter its MemoryDenyWriteExecute=yes installs."""

import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import _running_in_ci
from tests.e2e.processes import console_script, free_port, https_status, start_service, wait_for
from tests.e2e.servers import ADMIN, make_site

UNIT = Path(__file__).parent.parent / "deploy" / "authsvc.service"
#: `systemd-analyze security` rates 0 (sandboxed) to 10 (exposed); the unit scores 1.0.
EXPOSURE_LIMIT = 1.5


def systemd_analyze() -> str:
    """The systemd-analyze program; skips (fails when CI is set) when it is not installed."""
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze not installed (Debian package systemd)"
        if _running_in_ci():
            pytest.fail(f"{message}; CI is set, so this is an error", pytrace=False)
        pytest.skip(f"{message}: install it, or set CI=true to make this a failure")
    return found


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's authsvc (verify checks that the
    program exists); every other line as shipped."""
    authsvc = console_script("authsvc")
    assert authsvc is not None, "the authsvc console script is not installed"
    text = UNIT.read_text()
    assert "\nExecStart=/opt/authsvc/bin/authsvc serve\n" in text
    copy = tmp_path / "authsvc.service"
    copy.write_text(text.replace("ExecStart=/opt/authsvc/bin/authsvc",
                                 f"ExecStart={authsvc}"))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([systemd_analyze(), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_systemd_analyze_verify_has_nothing_to_say(unit: Path) -> None:
    done = analyze("verify", "--man=no", str(unit))
    assert done.returncode == 0, done.stderr
    # verify warns (unknown keys, unsafe users...) with status 0: any line naming the unit
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if unit.name in line]
    assert complaints == []


def test_systemd_analyze_security_rates_the_unit_ok(unit: Path) -> None:
    done = analyze("security", "--offline=true", "--no-pager", str(unit))
    assert done.returncode == 0, done.stderr
    found = re.search(r"Overall exposure level for authsvc\.service: (\d+\.\d+) (\w+)",
                      done.stdout)
    assert found, done.stdout
    assert float(found[1]) <= EXPOSURE_LIMIT, done.stdout
    assert found[2] == "OK"


def test_the_unit_runs_authsvc_as_its_own_user_with_settings_from_a_file() -> None:
    settings = dict(line.split("=", 1) for line in UNIT.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    assert settings["User"] == "authsvc" and settings["NoNewPrivileges"] == "yes"
    assert settings["EnvironmentFile"] == "/etc/authsvc/authsvc.env"
    assert settings["CapabilityBoundingSet"] == ""
    assert settings["MemoryDenyWriteExecute"] == "yes"
    assert "AUTHSVC_INSTANCE=/var/lib/authsvc/instance" in settings["Environment"]
    assert "AUTHSVC_CERTS_DIR=/var/lib/authsvc/certs" in settings["Environment"]


#: Runs a program under the seccomp filter systemd installs for MemoryDenyWriteExecute=yes on
#: x86-64 (src/shared/seccomp-util.c): mmap with PROT_WRITE and PROT_EXEC together, and
#: mprotect/pkey_mprotect with PROT_EXEC, fail with EPERM. No new privileges, as the unit says.
MDWE_WRAPPER = '''
import ctypes, os, struct, sys

LD, JEQ, AND, RET = 0x20, 0x15, 0x54, 0x06
ALLOW, EPERM = 0x7FFF0000, 0x00050000 | 1
PROT = 16 + 2 * 8  # seccomp_data.args[2], its low 32 bits
program = [
    (LD, 0, 0, 4), (JEQ, 1, 0, 0xC000003E), (RET, 0, 0, ALLOW),  # x86-64 only
    (LD, 0, 0, 0), (JEQ, 3, 0, 9), (JEQ, 5, 0, 10), (JEQ, 4, 0, 329), (RET, 0, 0, ALLOW),
    (LD, 0, 0, PROT), (AND, 0, 0, 6), (JEQ, 3, 4, 6),   # mmap: PROT_WRITE|PROT_EXEC
    (LD, 0, 0, PROT), (AND, 0, 0, 4), (JEQ, 0, 1, 4),   # mprotect: PROT_EXEC
    (RET, 0, 0, EPERM), (RET, 0, 0, ALLOW),
]


class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in program))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(38, 1, 0, 0, 0) or libc.prctl(
        22, 2, ctypes.byref(Program(len(program), ctypes.addressof(code))), 0, 0):
    sys.exit(f"seccomp: {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[1], sys.argv[1:])
'''


@pytest.mark.e2e
def test_authsvc_serve_works_under_memory_deny_write_execute(tmp_path: Path) -> None:
    if platform.machine() != "x86_64" or sys.platform != "linux":
        pytest.skip("the MemoryDenyWriteExecute filter here is written for x86-64 Linux")
    wrapper = tmp_path / "mdwe.py"
    wrapper.write_text(MDWE_WRAPPER)
    refused = subprocess.run(
        [sys.executable, str(wrapper), sys.executable, "-c",
         "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)"],
        capture_output=True, text=True, timeout=30, check=False)
    assert "Operation not permitted" in refused.stderr, refused.stderr  # the filter works

    site = make_site(tmp_path / "site")
    authsvc = console_script("authsvc")
    assert authsvc is not None
    port = free_port()
    service = start_service("authsvc serve (MemoryDenyWriteExecute)", [
        sys.executable, str(wrapper), authsvc, "serve", "--host", "127.0.0.1", "--port",
        str(port), "--workers", "2"], site.env, site.root / "serve.log", site.root)
    try:
        wait_for(service, lambda: https_status("127.0.0.1", port, "/nowhere", site.ca) == 404,
                 "answering HTTPS", 30)
        session = requests.Session()
        session.trust_env, session.verify = False, str(site.ca)
        url = f"https://127.0.0.1:{port}"
        token = session.get(f"{url}/token", auth=ADMIN, params={
            "service": "registry", "scope": "repository:admin/app:pull,push"})
        assert token.status_code == 200, token.text
        created = session.post(f"{url}/api/v1/users", auth=ADMIN,
                               json={"username": "alice", "password": "alice-password-1"})
        assert created.status_code == 201, created.text
        assert session.get(f"{url}/ui/signin").status_code == 200
        assert service.is_running(), service.log_tail()
    finally:
        service.stop()
