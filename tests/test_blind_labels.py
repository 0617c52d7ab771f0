"""benchmarks/blind_labels.py score on the committed test-split sheet and the thirteenth run's exported evals: the
blind-reading figures README publishes, paired per question as `inboxrl compare` pairs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_score_pairs_later_files_with_the_first_and_reproduces_readmes_figures() -> None:
    evals = RESULTS / "cpu-demo-v13" / "eval"
    files = [str(evals / run / "trajectories.jsonl.gz") for run in ("prompted", "trained")]
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "blind_labels.py"), "score",
                          str(RESULTS / "test-blind-labels.jsonl"), *files],
                         check=False, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out[files[0]]["reader_right"] == 6 and out[files[1]]["reader_right"] == 17
    paired = out["paired_with_first"][files[1]]
    right, strict, wrong = paired["reader_right"], paired["reader_right_strict"], paired["reader_wrong"]
    assert right["n"] == 42
    assert [round(100 * right[k], 1) for k in ("diff", "lo", "hi")] == [26.2, 11.9, 40.5]
    assert [round(100 * strict[k], 1) for k in ("diff", "lo", "hi")] == [21.4, 9.5, 33.3]
    assert [round(100 * wrong[k], 1) for k in ("diff", "lo", "hi")] == [-23.8, -40.5, -7.1]
