"""Where a figure in benchmarks/results comes from: the tree's commit, the machine and the library versions, one
record for every script that writes there (the benchmarks folder is not a package: scripts put it on sys.path)."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from inboxrl.models.hardware import cpu_flags

REPO = Path(__file__).resolve().parents[1]
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8")  # what decides the speeds here


def git(*args: str, repo: Path = REPO) -> str | None:
    """A git command's output in `repo`; None where git or the checkout is missing."""
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=10,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state(repo: Path = REPO) -> dict[str, Any]:
    """The commit of the tree, and whether tracked files differ from it (None for both without git)."""
    status = git("status", "--porcelain", "--untracked-files=no", repo=repo)
    return {"commit": git("rev-parse", "HEAD", repo=repo), "dirty": bool(status) if status is not None else None}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """The CPU, its bf16/AMX flags, cores, RAM, OS, Python and the load when the record was taken."""
    cpu = next((line.partition(":")[2].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), "") or platform.processor() or platform.machine()
    mem = next((line.split() for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal:")), [])
    flags = cpu_flags()
    return {"cpu": cpu, "cpu_flags": {f: f in flags for f in CPU_FLAGS}, "cores": os.cpu_count(),
            "ram_gb": round(int(mem[1]) / 2**20, 1) if len(mem) > 1 and mem[1].isdigit() else None,
            "os": platform.platform(), "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


def versions(dists: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions of these distributions (None where one is missing)."""
    out: dict[str, str | None] = {}
    for name in dists:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
