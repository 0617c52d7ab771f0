"""README's first command, `bash scripts/quickstart.sh`, must ANSWER its question: its own `ask` line, with its own
defaults, on the real full-corpus store, checked against the question's golden answer (not only the exit code)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "quickstart.sh"


def quickstart_ask() -> tuple[list[str], dict[str, str]]:
    """The script's `ask` command as argv (after `inboxrl`), with its variables' defaults filled in."""
    text = SCRIPT.read_text()
    defaults = {m.group(1): m.group(2) for m in re.finditer(r"^(\w+)=\$\{\1:-(.*)\}\s*$", text, re.MULTILINE)}
    values = {k: shlex.split(v)[0] if v.startswith('"') else v for k, v in defaults.items()}
    (line,) = [ln for ln in text.splitlines() if re.search(r"\binboxrl ask\b", ln)]
    argv = shlex.split(line.split("inboxrl ask", 1)[1].split("#")[0])
    filled = [re.sub(r"\$(\w+)", lambda m: values.get(m.group(1), m.group(0)), a) for a in argv]
    return ["ask", *filled], values


def test_the_quickstart_ask_line_is_found() -> None:
    argv, values = quickstart_ask()
    assert values["MODEL"] == "local/qwen2.5-coder-0.5b" and values["DATE"] == "2001-04-15"
    assert argv[:2] == ["ask", "--db"] and values["QUESTION"] in argv and "--harness" not in argv


@pytest.mark.slow
def test_quickstart_answers_its_question(full_store: Path, questions_path: Path) -> None:
    argv, values = quickstart_ask()
    argv[argv.index("--db") + 1] = str(full_store)
    golden = next(q for q in map(json.loads, questions_path.read_text().splitlines())
                  if q["question"] == values["QUESTION"])
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "inboxrl", *argv, "--json"], check=False, capture_output=True,
                       text=True, env=env, timeout=3600)
    assert r.returncode == 0, r.stderr[-2000:]
    t = json.loads(r.stdout.strip().splitlines()[-1])
    assert t["meta"]["harness"] == "guided" and t["stop_reason"] == "answered", t["stop_reason"]
    answer = (t["final_answer"] or "").lower()
    assert "may 7" in answer, (answer, golden["answer"])  # golden: "May 7, at 4:00 p.m. at Enron, 1400 Smith."
    assert not t["turns"][-1]["format_error"]
