"""Which authsvc the benchmark measures: this working tree, or ``--ref COMMIT`` as committed
(a ``git archive`` in the temporary folder); every report names its commit, the uncommitted
files and a hash of the sources."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.site import REPO


def git(*argv: str) -> str:
    """The output of ``git argv`` in this checkout (empty when git fails)."""
    try:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True,  # noqa: S603,S607
                              text=True, timeout=60, check=False).stdout.strip()
    except OSError:
        return ""


def authsvc_under_test(args: argparse.Namespace, src: Path) -> dict[str, Any]:
    """Which authsvc code the servers run (from ``src``): commit, changed files, a hash of its
    sources."""
    digest = hashlib.sha256()
    for path in sorted((src / "authsvc").rglob("*.py")):
        digest.update(str(path.relative_to(src)).encode() + b"\0" + path.read_bytes())
    if args.ref:
        return {"source": f"git archive of {args.ref}",
                "commit": git("rev-parse", "--short", args.ref), "changed": [],
                "sources_sha256": digest.hexdigest()[:16]}
    changed = [line[3:] for line in git("status", "--porcelain", "--", "authsvc").splitlines()]
    return {"source": str(REPO), "commit": git("rev-parse", "--short", "HEAD"),
            "changed": changed, "sources_sha256": digest.hexdigest()[:16]}


def describe(code: dict[str, Any]) -> str:
    """One line naming the authsvc measured (``authsvc_under_test``)."""
    changed = (f" + {len(code['changed'])} uncommitted file(s) in authsvc/"
               if code["changed"] else "")
    return f"authsvc {code['commit']}{changed} (sources {code['sources_sha256']})"


def snapshot(ref: str, tmp: Path) -> Path:
    """``git archive`` of ``ref`` with this checkout's bench/ copied in."""
    src = tmp / "src"
    src.mkdir()
    archive = tmp / "src.tar"
    done = subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref],  # noqa: S603,S607
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise BenchError(f"git archive {ref}: {done.stderr.strip()}")
    shutil.unpack_archive(archive, src, "tar")
    shutil.rmtree(src / "bench", ignore_errors=True)
    shutil.copytree(REPO / "bench", src / "bench",
                    ignore=shutil.ignore_patterns("results", "__pycache__"))
    return src
