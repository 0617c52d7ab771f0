"""`auto` precision: bf16 only where the hardware computes it natively (on an AVX2-only CPU it is ~3x slower)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inboxrl.models import hardware
from inboxrl.models.hardware import bf16_native_from_flags, cpu_flags, local_dtype_name, resolve_dtype
from inboxrl.training.config import TrainConfig

# First lines of real /proc/cpuinfo files: this project's AVX2-only EPYC, an AMX Xeon, an Arm Neoverse V1.
X86_AVX2 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\n"
            "flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni\n")
X86_AMX = ("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_fp16 "
           "amx_bf16 amx_tile amx_int8\n")
ARM_V1 = "processor\t: 0\nBogoMIPS\t: 2100.00\nFeatures\t: fp asimd evtstrm aes sha2 crc32 atomics bf16 i8mm\n"

MINIMAL = {"max_steps": 2, "data": {"db": "x.db", "train_questions": "q.jsonl"}}


@pytest.mark.parametrize(("text", "native"), [(X86_AVX2, False), (X86_AMX, True), (ARM_V1, True), ("", False)])
def test_cpu_flags_are_read_from_cpuinfo_and_decide_native_bf16(tmp_path: Path, text: str, native: bool) -> None:
    f = tmp_path / "cpuinfo"
    f.write_text(text)
    flags = cpu_flags(f)
    assert ("avx2" in flags) == ("avx2" in text)
    assert bf16_native_from_flags(flags) is native


def test_cpu_flags_of_a_machine_without_cpuinfo_are_empty(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_resolves_per_machine_and_the_config_records_what_ran(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, native: bool) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: native)
    cfg = TrainConfig.from_dict({**MINIMAL, "bf16": "auto", "rollout_dtype": "auto", "validation_dtype": "auto",
                                 "base_dtype": "auto"})
    assert cfg.bf16 is native
    assert cfg.base_dtype == ("bfloat16" if native else "float32")
    assert cfg.rollout_dtype == cfg.validation_dtype == ("bfloat16" if native else None)
    saved = json.loads(cfg.model_dump_json())  # what a run writes to RUN_DIR/config.json
    assert saved["bf16"] is native
    assert "auto" not in (saved["rollout_dtype"], saved["validation_dtype"], saved["base_dtype"])
    # explicit values are kept whatever the machine (int8 too)
    fixed = TrainConfig.from_dict({**MINIMAL, "bf16": True, "rollout_dtype": "int8"})
    assert fixed.bf16 is True and fixed.rollout_dtype == "int8" and fixed.validation_dtype is None
    # the local backend's dtype by name, as `INBOXRL_DTYPE=auto inboxrl eval` takes it
    assert local_dtype_name("auto") == ("bfloat16" if native else "float32")
    assert resolve_dtype("auto") == ("bfloat16" if native else None)
    monkeypatch.setenv("INBOXRL_DTYPE", "auto")
    assert local_dtype_name() == ("bfloat16" if native else "float32")


def test_explicit_bf16_on_a_cpu_without_it_is_called_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: False)
    slow = TrainConfig.from_dict({**MINIMAL, "bf16": True, "validation_dtype": "bfloat16"}).precision()
    assert slow.startswith("bf16 autocast on, base float32, rollouts float32, validation bfloat16")
    assert "emulated" in slow
    auto = TrainConfig.from_dict({**MINIMAL, "bf16": "auto"}).precision()
    assert "autocast off" in auto and "emulated" not in auto
    monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: True)
    assert "emulated" not in TrainConfig.from_dict({**MINIMAL, "bf16": True}).precision()


def test_a_misspelt_auto_is_one_line_naming_the_field() -> None:
    from inboxrl.training.config import TrainConfigError

    with pytest.raises(TrainConfigError, match="rollout_dtype"):
        TrainConfig.from_dict({**MINIMAL, "rollout_dtype": "atuo"})
