"""Whether this machine computes in bfloat16 natively, and what `auto` means for a dtype setting.

bf16 is a win only where the hardware has bf16 instructions (AVX512-BF16 or AMX on x86, BF16 on Arm, or a CUDA
GPU that supports it); elsewhere torch emulates it and it costs instead (docs/benchmarks.md, "Local generation
speed"). A config that hard-codes bf16 is right on one machine and slow on the next, so the shipped configs say `auto` and this module decides per machine.
Reading /proc/cpuinfo keeps the decision free of a torch import, so a config validates in milliseconds.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

# x86: AVX512-BF16 or AMX tiles; Arm: the BF16 extension (FEAT_BF16).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def bf16_native_from_flags(flags: set[str] | frozenset[str]) -> bool:
    return bool(NATIVE_BF16_FLAGS & flags)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags (x86 `flags`, Arm `Features`); empty where there is no /proc/cpuinfo."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@functools.cache
def cpu_bf16_native() -> bool:
    return bf16_native_from_flags(cpu_flags())


def cuda_bf16_native() -> bool:
    """Only asked when a config runs on `device: auto` with a GPU; importing torch is then a cost already paid."""
    try:
        import torch

        return bool(torch.cuda.is_bf16_supported())
    except (ImportError, RuntimeError, AssertionError):
        return False


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def bf16_native(device: str = "cpu") -> bool:
    """`device` as the training config names it: "cpu", or "auto" (a GPU when there is one)."""
    if device == "auto" and cuda_available():
        return cuda_bf16_native()
    return cpu_bf16_native()


def describe() -> str:
    """One line for logs and records: what `auto` saw."""
    found = sorted(NATIVE_BF16_FLAGS & cpu_flags())
    return f"native bf16 on this CPU ({', '.join(found)})" if found else "no native bf16 on this CPU"


def resolve_dtype(dtype: str | None, device: str = "cpu") -> str | None:
    """`auto` becomes bfloat16 where bf16 is native and None (float32) elsewhere; anything else is kept."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if bf16_native(device) else None


_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "qint8": "int8"}


def local_dtype_name(dtype: str | None = None) -> str:
    """A local backend's dtype by name, aliases and `auto` resolved; default `$INBOXRL_DTYPE`, else float32."""
    d = dtype or os.environ.get("INBOXRL_DTYPE") or "float32"
    d = _ALIASES.get(d, d)
    return (resolve_dtype(d) or "float32") if d == "auto" else d


def precision_record() -> dict[str, str | None]:
    """What an eval's metrics.json keeps of its local models' precision, so baselines measured on different
    machines can be told apart (bf16 kernels round differently across CPUs)."""
    return {"INBOXRL_DTYPE": os.environ.get("INBOXRL_DTYPE"), "local_dtype": local_dtype_name(), "cpu": describe()}
