"""`inboxrl report` (plots against prompted baselines) and `inboxrl export` (merge a LoRA adapter)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from inboxrl.cli import app


def _write_run(run_dir: Path) -> None:
    from inboxrl.training import runlog

    for step, acc, turns, hall in [(0, 0.0, 5.0, 0.2), (10, 0.1, 4.2, 0.15), (20, 0.25, 3.1, 0.1)]:
        runlog.append(run_dir, {"kind": "validation", "step": step, "accuracy": acc, "avg_turns": turns,
                                "hallucination_rate": hall, "n_scored": 16})
    for step in range(1, 21):
        runlog.append(run_dir, {"kind": "train", "step": step, "episode/reward_mean": step / 20,
                                "episode/reward_std": 0.3})


def _write_eval(d: Path, model: str, acc: float) -> None:
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"judge": "lexical", "models": {
        model: {"accuracy": acc, "avg_turns": 4.5, "hallucination_rate": 0.3, "n_scored": 16}}}))


def test_train_report_plots_curve_with_one_line_per_baseline(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_run(run)
    _write_eval(tmp_path / "eval-qwen", "local/qwen2.5-coder-0.5b", 0.125)
    _write_eval(tmp_path / "eval-smol", "local/smollm2-135m", 0.0)
    r = CliRunner().invoke(app, ["report", str(run), "--baseline", str(tmp_path / "eval-qwen"),
                                 "--baseline", str(tmp_path / "eval-smol"), "--out", str(tmp_path / "plots"),
                                 "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    names = sorted(Path(p).name for p in out["plots"])
    assert names == ["accuracy.png", "checks.png", "hallucination.png", "models.png", "reward.png", "turns.png"]
    for p in out["plots"]:
        assert Path(p).stat().st_size > 5000
    rows = {row["name"]: row for row in out["table"]}
    assert rows["local/qwen2.5-coder-0.5b (prompted)"]["accuracy"] == 0.125
    assert rows["policy, first validation"]["step"] == 0
    assert rows["policy, last validation"]["accuracy"] == 0.25


def test_train_report_html_page_beside_its_pngs_with_numbers_from_the_run_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _write_run(run)
    from inboxrl.training import runlog

    for step, shotgun in [(0, 3), (20, 7)]:  # detector counts as the trainer logs them
        runlog.append(run, {"kind": "validation", "step": step, "checks/shotgun": shotgun, "checks/divergence": 0})
    hostile = "<script>window.x=1</script>"
    d = tmp_path / "eval-hostile"
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps({"models": {hostile: {"accuracy": 0.125, "cost_per_1000_usd": 1.5,
                                                                     "latency_p50_s": 12.25}}}))
    r = CliRunner().invoke(app, ["report", str(run), "--baseline", str(d), "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    html_path = Path(json.loads(r.stdout)["html"])
    assert html_path.parent == tmp_path / "out"
    html = html_path.read_text(encoding="utf-8")
    for name in ("accuracy.png", "models.png", "checks.png", "reward.png"):
        assert f"src='{name}'" in html and (tmp_path / "out" / name).is_file()
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "12.5%" in html and "1.50" in html and "12.2" in html  # the baseline's accuracy, cost, latency
    assert "policy, step 20" in html
    # detector counts over steps, from the checks/<name> keys
    assert "<th>shotgun</th>" in html and "<td>0</td><td>3</td>" in html.replace("\n", "")


def test_train_report_plot_draws_a_horizontal_line_per_baseline(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from inboxrl.evaluation import plots
    from inboxrl.training import runlog

    run = tmp_path / "run"
    _write_run(run)
    _write_eval(tmp_path / "e1", "gpt-4.1-mini", 0.6)
    drawn: list[float] = []
    real_axhline = plt.Axes.axhline

    def spy(self, y=0, *a, **k):  # type: ignore[no-untyped-def]
        drawn.append(y)
        return real_axhline(self, y, *a, **k)

    plt.Axes.axhline = spy  # type: ignore[method-assign]
    try:
        plots.plot_run(list(runlog.read(run)), tmp_path / "p", plots.load_baselines([tmp_path / "e1"]))
    finally:
        plt.Axes.axhline = real_axhline  # type: ignore[method-assign]
    assert drawn == [0.6, 4.5, 0.3]  # accuracy, turns, hallucination: one line each
    steps, values = plots.validation_series(runlog.read(run), "accuracy")
    assert steps == [0, 10, 20] and values == [0.0, 0.1, 0.25]


def test_train_report_errors_are_one_line(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "p")])
    assert r.exit_code == 2 and "metrics.jsonl" in r.output and "Traceback" not in r.output
    run = tmp_path / "run"
    _write_run(run)
    r = CliRunner().invoke(app, ["report", str(run), "--baseline", str(tmp_path / "nope"), "--out",
                                 str(tmp_path / "p")])
    assert r.exit_code == 2 and "no metrics.json" in r.output


def test_train_runlog_rollback_drops_later_steps_and_torn_lines(tmp_path: Path) -> None:
    from inboxrl.training import runlog

    _write_run(tmp_path)
    with (tmp_path / runlog.METRICS_FILE).open("a") as f:
        f.write('{"kind": "train", "step": 21, "los')  # a kill mid-write
    runlog.truncate_after(tmp_path, 10)
    recs = list(runlog.read(tmp_path))
    assert max(r["step"] for r in recs) == 10
    assert [r["step"] for r in recs if r["kind"] == "validation"] == [0, 10]
    assert all(json.loads(line) for line in (tmp_path / runlog.METRICS_FILE).read_text().splitlines())


def test_train_export_merges_the_adapter_into_the_base(tmp_path: Path) -> None:
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from inboxrl.training.tiny import build_tiny_model

    base = build_tiny_model()
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(base),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    torch.manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # a trained adapter: B is no longer zero
    adapter = tmp_path / "final"
    model.save_pretrained(adapter)
    r = CliRunner().invoke(app, ["export", "--adapter", str(adapter), "--out", str(tmp_path / "merged"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["base"] == str(base) and info["model_spec"] == f"local/{tmp_path / 'merged'}"
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    ids = torch.tensor([[151644, 872, 198, 9707, 151645]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter)(ids).logits
        got = merged(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(base)(ids).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-4)  # the adapter really changed the model
    # a second export into the same dir needs --overwrite
    r = CliRunner().invoke(app, ["export", "--adapter", str(adapter), "--out", str(tmp_path / "merged")])
    assert r.exit_code == 1 and "--overwrite" in r.output
