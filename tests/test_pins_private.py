"""The private parts of TRL and transformers the code still touches (docs/training.md, "Private attributes we
touch"): each test fails loudly when a new pinned version changes what the code relies on. Fast: no model load."""

from __future__ import annotations

import inspect

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")


def test_pin_trl_use_triton_is_a_module_global_that_keeps_cpu_on_the_full_path() -> None:
    """trainer._score_completion_tokens_only patches `trl.trainer.utils._use_triton` for the length of a run."""
    import trl.trainer.utils as tu

    assert callable(tu._use_triton) and list(inspect.signature(tu._use_triton).parameters) == ["device"]
    # Still False on CPU: without the patch the CPU would score every prompt position (the patch is still needed).
    assert tu._use_triton(torch.device("cpu")) is False
    # Looked up as a module global at call time, so replacing the module attribute reaches the caller.
    assert "_use_triton(hidden_states.device)" in inspect.getsource(tu)


def test_pin_trl_use_triton_patch_is_undone() -> None:
    import trl.trainer.utils as tu

    from inboxrl.training.trainer import _score_completion_tokens_only

    before = tu._use_triton
    with _score_completion_tokens_only():
        assert tu._use_triton(torch.device("cpu")) is True
    assert tu._use_triton is before


def test_pin_trl_last_loaded_step_guards_the_vllm_weight_sync() -> None:
    """callbacks.validate syncs vLLM's weights itself, then sets `_last_loaded_step` so TRL does not sync again."""
    from trl import GRPOTrainer

    src = inspect.getsource(GRPOTrainer)
    assert "self.state.global_step != self._last_loaded_step" in src
    assert "self._last_loaded_step = self.state.global_step" in src


def test_pin_trl_log_is_where_grpo_merges_its_metrics() -> None:
    """Our figures reach the log records through the public `log` override; GRPOTrainer.log must keep its
    signature and hand the merged record to `Trainer.log`."""
    from trl import GRPOTrainer

    assert list(inspect.signature(GRPOTrainer.log).parameters) == ["self", "logs", "start_time"]
    assert "super().log(logs, start_time)" in inspect.getsource(GRPOTrainer.log)


def test_pin_transformers_cache_layer_contract_of_kvcache() -> None:
    """models/kvcache.py subclasses DynamicLayer (BufferLayer) and builds a Cache from its own layers."""
    from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

    from inboxrl.models.kvcache import BatchCache, BufferLayer

    assert list(inspect.signature(DynamicLayer.lazy_initialization).parameters)[:3] == [
        "self", "key_states", "value_states"]
    assert list(inspect.signature(DynamicLayer.update).parameters)[:3] == ["self", "key_states", "value_states"]
    assert "layers" in inspect.signature(Cache.__init__).parameters
    layer = BufferLayer(4)
    assert layer.is_initialized is False and hasattr(layer, "keys") and hasattr(layer, "values")
    k = torch.ones(1, 2, 3, 4)
    keys, values = layer.update(k, k * 2)
    assert keys.shape == (1, 2, 3, 4) and bool((values == 2).all()) and layer.get_seq_length() == 3 and layer.is_initialized
    cache = BatchCache([layer])
    assert isinstance(cache, DynamicCache) and cache.layers == [layer] and cache.get_seq_length() == 3
