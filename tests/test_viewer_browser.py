"""The viewer in a real browser (Debian's Chromium through Playwright) over real eval runs and the real store.

The two runs in tests/data/viewer were made by `inboxrl eval` of the bundled Qwen2.5-Coder-0.5B on grounded
Kaminski questions (the README there has the commands). The hostile run adds one episode whose question, keywords,
hits, answer, sources and email carry `<script>`, `<img onerror>` and `javascript:` links; the page must show them
as text and run none of them.

Set INBOXRL_SCREENSHOTS=1 to write the README's screenshots to docs/img/ (otherwise they go to a temp dir).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from viewer_helpers import GUIDED, HOSTILE_ID, SMOL, hostile_run, hostile_store, serve

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent

from playwright import sync_api  # the viewer extra: scripts/install.sh installs it, so CI fails without it

# Outside CI a machine without Debian's chromium skips; in CI (CI=true) the missing browser fails the test.
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("CI") != "true",
                                reason="needs Debian's chromium (scripts/install.sh)")


@pytest.fixture(scope="module")
def browser() -> Any:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


def _watch(page: Any) -> dict[str, list[str]]:
    """Records every dialog (alert/confirm) and console message: a script that ran would show here."""
    seen: dict[str, list[str]] = {"dialogs": [], "console": []}

    def on_dialog(d: Any) -> None:
        seen["dialogs"].append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen["console"].append(m.text))
    return seen


def _shots() -> Path | None:
    return REPO / "docs" / "img" if os.environ.get("INBOXRL_SCREENSHOTS") == "1" else None


def test_click_through_real_runs(browser: Any, enron_store: Path, tmp_path: Path) -> None:
    from inboxrl.viewer.app import create_app

    runs = [tmp_path / "guided", tmp_path / "smol"]
    shutil.copytree(GUIDED, runs[0])
    shutil.copytree(SMOL, runs[1])
    before = {p: p.read_bytes() for r in runs for p in r.iterdir()}
    labels = tmp_path / "labels.jsonl"
    app = create_app(runs, db=enron_store, labels=labels)
    shots = _shots() or tmp_path
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    seen = _watch(page)
    with serve(app) as base:
        # The run table: one row per model with the numbers of metrics.json.
        page.goto(base + "/")
        metrics = json.loads((GUIDED / "metrics.json").read_text())
        model, m = next(iter(metrics["models"].items()))
        table = page.locator("table.metrics").first.inner_text()
        assert model in table
        assert f"{100 * m['accuracy']:.1f}%" in table
        assert f"{100 * m['dont_know_rate']:.1f}%" in table

        # Filter to the wrong answers of the guided run: only those rows remain.
        page.goto(base + "/questions")
        page.select_option("select[name=col]", "0")
        page.select_option("select[name=show]", "wrong")
        page.click("button[type=submit]")
        wrong = [json.loads(x) for x in (GUIDED / "trajectories.jsonl").read_text().splitlines()]
        n_wrong = sum(1 for t in wrong if t["rubric"]["attempted_answer"] and not t["rubric"]["answer_correct"])
        assert page.inner_text("#count").startswith(f"{n_wrong} question")
        page.select_option("select[name=show]", "all")
        page.click("button[type=submit]")
        assert page.inner_text("#count").startswith(f"{len(wrong)} question")
        page.screenshot(path=str(shots / "viewer-questions.png"), full_page=True)

        # Open an episode: the question, the golden answer, every turn's raw output.
        first = wrong[0]
        page.click("table.questions tr:nth-child(2) td:nth-child(2) a")
        assert first["question"] in page.inner_text("h2.question")
        assert (first["golden_answer"] or "") in page.inner_text(".golden")
        raws = page.locator("pre.raw").all_inner_texts()
        assert len(raws) == len(first["turns"])
        page.screenshot(path=str(shots / "viewer-episode.png"), full_page=False)

        # Follow a link to an email: the real message opens, with its body.
        links = page.locator("a.email")
        assert links.count() > 0
        links.first.click()
        assert page.locator("#body").count() == 1 or page.locator("#email-error").count() == 1
        golden = page.url
        page.goto(base + "/email/0/0?" + urlencode({"id": first["golden_message_ids"][0]}))
        assert page.locator("#body").count() == 1, page.content()[:2000]
        assert page.inner_text("#subject")
        assert golden

        # Label an answer blind: no run or model name on the page; the sheet is a calibration file.
        page.goto(base + "/label")
        if page.locator("#candidate").count():
            text = page.inner_text("main")
            assert model not in text and "smollm2" not in text and "guided" not in text and "smol" not in text
            candidate = page.inner_text("#candidate")
            with page.expect_navigation():
                page.click("#label-borderline")
            assert "1 of" in page.content(), page.content()[:600]
            from inboxrl.judge.calibrate import load_calibration

            rows = load_calibration(labels)
            assert rows[0].candidate.strip() == candidate.strip() and rows[0].label and rows[0].kind == "partial"

        # Compare the two runs: rows whose outcome changed, both outcomes side by side.
        page.goto(base + "/questions?col=0&b=1&show=changed")
        plain = {json.loads(x)["question_id"]: json.loads(x) for x in (SMOL / "trajectories.jsonl").read_text()
                 .splitlines()}
        from inboxrl.viewer.index import outcome

        changed = sum(1 for t in wrong if t["question_id"] in plain and outcome(t) != outcome(plain[t["question_id"]]))
        assert page.inner_text("#count").startswith(f"{changed} question")
    assert not seen["dialogs"]
    # Nothing was written into the runs.
    assert {p: p.read_bytes() for r in runs for p in r.iterdir()} == before


def test_hostile_episode_and_mail_run_no_script(browser: Any, enron_store: Path, tmp_path: Path) -> None:
    from inboxrl.viewer.app import create_app

    run = hostile_run(tmp_path / "hostile-run")
    db = hostile_store(enron_store, tmp_path)
    app = create_app([run], db=db, labels=tmp_path / "labels.jsonl")
    page = browser.new_page()
    seen = _watch(page)
    with serve(app) as base:
        page.goto(base + "/questions?q=hostile")
        assert page.inner_text("#count").startswith("1 question")
        page.click("table.questions a")
        col, ep = page.url.rsplit("/", 2)[1:]
        email = base + f"/email/{col}/{ep}?" + urlencode({"id": HOSTILE_ID})
        for url in (page.url, email, base + "/", base + "/questions?q=script", base + "/label"):
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned") is None, url
            assert page.locator("main script, main img, main iframe").count() == 0, url
            assert page.locator("a[href^='javascript:' i]").count() == 0, url
            assert page.locator("[onerror]").count() == 0, url
        # The hostile text is shown as text, where a reader can see it.
        page.goto(base + f"/episode/{col}/{ep}")
        assert "<script>window.__pwned=1</script>" in page.inner_text("#final-answer")
        assert "javascript:window.__pwned=3" in page.inner_text("#final-answer")
        assert "<script>" in page.inner_text("h2.question")
        page.goto(email)
        assert "<script>" in page.inner_text("#subject")
        assert 'onerror="window.__pwned=2"' in page.inner_text("#body")
    assert not seen["dialogs"], seen
