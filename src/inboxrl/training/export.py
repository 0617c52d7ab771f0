"""`inboxrl export`: merge a LoRA adapter into its base model, giving a plain transformers model directory.

A merged model loads anywhere a base model does (`local/<dir>`, vLLM, llama.cpp conversion, an inference server)
with no PEFT at serving time and no adapter overhead per token.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path


class ExportError(RuntimeError):
    """An export that cannot be done; one line for the user."""


@dataclass
class ExportResult:
    out_dir: Path
    base: str
    adapter: Path
    parameters: int


def _base_for(adapter: Path, base: str | None) -> str:
    """The base to merge into: `--base` (a model spec or dir), else what the run recorded, else the adapter's
    own `base_model_name_or_path`."""
    if base:
        if base.startswith(("local/", "tiny/")):
            from inboxrl.training.base_model import resolve_base

            return resolve_base(base)[0]
        return base
    meta = adapter / "inboxrl-adapter.json"
    if meta.is_file():
        try:
            p = json.loads(meta.read_text()).get("base_path")
            if p and Path(p).exists():
                return str(p)
        except ValueError:
            pass
    from inboxrl.training.base_model import base_dir_of_adapter

    try:
        return base_dir_of_adapter(adapter)
    except (FileNotFoundError, ValueError) as e:
        raise ExportError(str(e)) from None


def export_merged(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None,
                  overwrite: bool = False) -> ExportResult:
    adapter = Path(adapter_dir)
    out = Path(out_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise ExportError(f"not a LoRA adapter directory (no adapter_config.json): {adapter}")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; pass --overwrite or choose another --out")
    base_path = _base_for(adapter, base)

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    except OSError as e:
        raise ExportError(f"cannot load base model {base_path!r}: {str(e).splitlines()[0]}") from None
    tok_src = adapter if (adapter / "tokenizer_config.json").is_file() else Path(base_path)
    tok = AutoTokenizer.from_pretrained(str(tok_src))
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError) as e:
        raise ExportError(f"adapter {adapter} does not fit base {base_path}: {str(e).splitlines()[0]}") from None
    merged = peft_model.merge_and_unload()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        (tmp / "inboxrl-export.json").write_text(json.dumps({"base": base_path, "adapter": str(adapter)}, indent=1))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    n = sum(p.numel() for p in merged.parameters())
    return ExportResult(out_dir=out, base=base_path, adapter=adapter, parameters=n)
