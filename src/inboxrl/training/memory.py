"""Resident memory of a training process: stage peaks, the lifetime peak, and giving freed memory back.

Why stage peaks: a run's one peak figure does not say which stage (a rollout's model copy, the loss over a long
episode, validation) set it. Linux lets a process reset its own high-water mark (`/proc/self/clear_refs` = 5), so
each stage's peak is exact, not sampled. That reset also resets `getrusage`'s `ru_maxrss`, so the lifetime peak is
kept here as the maximum over every reading.

Why the allocator: glibc keeps one arena per thread, each holding freed memory of its own; two are capped here. A
fixed mmap threshold (large tensors unmapped when freed) kept the peak lower still, but every large allocation then
faulted its pages in afresh and every loss pass got slower (docs/cpu-training.md), so it is off by default.
`malloc_trim` gives back what the heaps still hold after each stage.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
from collections.abc import Iterator
from typing import Any

_KB = 2**20  # kB per GB
_M_MMAP_THRESHOLD = -3  # mallopt parameters (glibc malloc.h)
_M_ARENA_MAX = -8
_lifetime_peak_kb = 0
_libc: Any = None


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ru_maxrss_kb() -> int:
    try:
        import resource
        import sys
    except ImportError:  # Windows
        return 0
    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, kB on Linux


def _read_peak_kb() -> int:
    """The high-water mark since the last reset, folded into the lifetime peak."""
    global _lifetime_peak_kb
    hwm = _status_kb("VmHWM")
    now = hwm if hwm is not None else _ru_maxrss_kb()
    _lifetime_peak_kb = max(_lifetime_peak_kb, now)
    return now


def peak_gb() -> float:
    """Peak resident memory of the process so far (GB), across stage resets."""
    _read_peak_kb()
    return _lifetime_peak_kb / _KB if _lifetime_peak_kb else math.nan


def rss_gb() -> float:
    kb = _status_kb("VmRSS")
    return kb / _KB if kb is not None else math.nan


def anon_gb() -> float:
    """Resident memory without file pages (the mail store's mmap): what the kernel cannot drop."""
    kb = _status_kb("RssAnon")
    return kb / _KB if kb is not None else math.nan


def _reset_peak() -> bool:
    _read_peak_kb()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _glibc() -> Any:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            lib = ctypes.CDLL(name) if name else None
            _libc = lib if lib is not None and hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else False
        except OSError:
            _libc = False
    return _libc or None


def trim() -> bool:
    """Returns the heaps' free memory to the system (glibc); False where there is no glibc."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


def tune_allocator(*, arenas: int | None = 2, mmap_threshold_mb: int | None = None) -> bool:
    """Caps glibc's arenas (one per thread otherwise, each holding freed memory of its own) and, if asked, fixes
    its mmap threshold (large tensors are then unmapped when freed, and faulted in afresh on every allocation).
    True when applied."""
    lib = _glibc()
    if lib is None:
        return False
    ok = 1
    if mmap_threshold_mb is not None:
        ok &= lib.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_mb) * 2**20)
    if arenas is not None:
        ok &= lib.mallopt(_M_ARENA_MAX, int(arenas))
    return bool(ok)


class StagePeaks:
    """Peak and end resident memory (GB) of named stages: `with peaks.stage("rollout"): ...`. Stages may nest
    (TRL runs the rollout inside a training step): a reset inside folds the peak so far into every open stage."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.after: dict[str, float] = {}
        self._open: list[list[float]] = []  # running peak (GB) of each open stage, outermost first

    def _fold(self, gb: float) -> None:
        for run in self._open:
            run[0] = max(run[0], gb)

    @contextlib.contextmanager
    def stage(self, name: str, *, trim_after: bool = True) -> Iterator[None]:
        self._fold(_read_peak_kb() / _KB)
        exact = _reset_peak()
        run = [rss_gb()]
        self._open.append(run)
        try:
            yield
        finally:
            self._fold(_read_peak_kb() / _KB if exact else rss_gb())
            self._open = [r for r in self._open if r is not run]  # by identity: equal peaks are common
            self.peaks[name] = max(self.peaks.get(name, 0.0), run[0])
            if trim_after:
                trim()
            self.after[name] = rss_gb()

    def pop(self, name: str) -> float:
        """The peak of stage `name` (GB), forgotten here (NaN when it did not run)."""
        self.after.pop(name, None)
        return self.peaks.pop(name, math.nan)

    def metrics(self) -> dict[str, float]:
        """`memory/<stage>_peak_gb` and `memory/<stage>_after_gb` for the stages seen since the last call, then
        forgets them."""
        out = {f"memory/{k}_peak_gb": v for k, v in self.peaks.items()}
        out.update({f"memory/{k}_after_gb": v for k, v in self.after.items()})
        self.peaks.clear()
        self.after.clear()
        return out


STAGES = StagePeaks()  # one process, one record of its stages
