"""`inboxrl questions stats` and splits, on hand-made files whose numbers are known, and on the real ART-E file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inboxrl.cli import app
from inboxrl.questions.output import split_path, write_questions
from inboxrl.questions.schema import Question, load_questions
from inboxrl.questions.split import SplitError, split_questions
from inboxrl.questions.stats import is_first_person, question_stats
from questions_store import ARTE_QUESTIONS

runner = CliRunner()

HAND_MADE = [
    {"id": 1, "question": "When is my meeting with Sarah?", "answer": "Friday at 3 pm", "message_ids": ["<a>"],
     "how_realistic": 0.9, "inbox_address": "a@x.com", "query_date": "2001-01-05"},
    {"id": 2, "question": "What did John send me about the lease?", "answer": "The signed lease",
     "message_ids": ["<b>", "<c>"], "how_realistic": 0.7, "inbox_address": "a@x.com", "query_date": "2001-02-01"},
    {"id": 3, "question": "Budget total for Q3", "answer": "$5,000", "message_ids": ["<d>"],
     "how_realistic": 0.3, "inbox_address": "b@x.com", "query_date": "2000-12-24"},
    {"id": 4, "question": "Where is the offsite", "answer": "The Woodlands", "message_ids": ["<e>", "<f>", "<g>"],
     "how_realistic": None, "inbox_address": "a@x.com", "query_date": "2001-03-10"},
]


@pytest.fixture()
def hand_made(tmp_path: Path) -> Path:
    p = tmp_path / "hand.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in HAND_MADE), encoding="utf-8")
    return p


def test_stats_numbers_on_hand_made_file(hand_made: Path) -> None:
    s = question_stats(load_questions(hand_made))
    assert s["questions"] == 4
    assert s["question_words"]["mean"] == pytest.approx(5.5)
    assert s["question_words"]["max"] == 8
    assert s["answer_words"]["mean"] == pytest.approx((4 + 3 + 1 + 2) / 4)
    assert s["first_person_rate"] == pytest.approx(0.5)
    assert s["question_mark_rate"] == pytest.approx(0.5)
    hr = s["how_realistic"]
    assert hr["mean"] == pytest.approx(round((0.9 + 0.7 + 0.3) / 3, 3))
    assert hr["missing"] == 1
    assert hr["histogram"] == {"0.0-0.2": 0, "0.2-0.4": 1, "0.4-0.6": 0, "0.6-0.8": 1, "0.8-1.0": 1}
    sp = s["sources_per_question"]
    assert sp["mean"] == pytest.approx(1.75)
    assert (sp["counts"]["1"], sp["counts"]["2"], sp["counts"]["3"], sp["counts"]["0"]) == (2, 1, 1, 0)
    pi = s["questions_per_inbox"]
    assert (pi["inboxes"], pi["min"], pi["max"]) == (2, 1, 3)
    assert pi["top"] == {"a@x.com": 3, "b@x.com": 1}
    assert s["query_dates"] == {"first": "2000-12-24", "last": "2001-03-10"}


def test_first_person_detection() -> None:
    assert is_first_person("When's my flight?")
    assert is_first_person("What did I agree to with Ken?")
    assert is_first_person("I’m looking for the memo")  # typographic apostrophe
    assert not is_first_person("What is the India project budget?")  # 'India' is not 'I'


def test_stats_cli_side_by_side_json_and_table(hand_made: Path) -> None:
    res = runner.invoke(app, ["questions", "stats", str(hand_made), str(ARTE_QUESTIONS), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert list(data) == [str(hand_made), str(ARTE_QUESTIONS)]
    arte = data[str(ARTE_QUESTIONS)]
    assert arte["questions"] == 2510
    assert arte["questions_per_inbox"]["top"] == {"vince.kaminski@enron.com": 2510}
    assert 0.5 < arte["how_realistic"]["mean"] < 1.0
    assert sum(arte["sources_per_question"]["counts"].values()) == 2510

    table = runner.invoke(app, ["questions", "stats", str(hand_made), str(ARTE_QUESTIONS)])
    assert table.exit_code == 0
    assert "hand.jsonl" in table.stdout and "kaminski-train.jsonl" in table.stdout
    assert "first-person rate" in table.stdout


def test_stats_cli_bad_file_is_one_red_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "x"}\n', encoding="utf-8")
    for path in (bad, tmp_path / "missing.jsonl"):
        res = runner.invoke(app, ["questions", "stats", str(path)])
        assert res.exit_code == 2
        assert "Traceback" not in res.output
        assert len(res.stderr.strip().splitlines()) == 1


def _many(n_inboxes: int, per: int) -> list[Question]:
    out = []
    for i in range(n_inboxes):
        for j in range(per):
            out.append(Question(id=f"{i}-{j}", question=f"q {i} {j}?", answer="a", message_ids=[f"<{i}.{j}>"],
                                how_realistic=0.8, inbox_address=f"user{i}@x.com",
                                query_date=f"2001-{1 + (i * per + j) % 12:02d}-{1 + j % 28:02d}"))
    return out


def test_split_by_inbox_has_no_overlap() -> None:
    qs = _many(7, 5)
    parts = split_questions(qs, "inbox", test_fraction=0.3, seed=3)
    train_inboxes = {q.inbox_address for q in parts["train"]}
    test_inboxes = {q.inbox_address for q in parts["test"]}
    assert train_inboxes and test_inboxes and not train_inboxes & test_inboxes
    assert len(test_inboxes) == 2  # round(0.3 * 7)
    assert len(parts["train"]) + len(parts["test"]) == len(qs)
    assert split_questions(qs, "inbox", 0.3, seed=3) == parts  # the seed fixes the choice
    explicit = split_questions(qs, "inbox", test_inboxes=["user0@x.com"])
    assert {q.inbox_address for q in explicit["test"]} == {"user0@x.com"}


def test_split_by_inbox_depends_on_the_inbox_list_not_the_yield() -> None:
    qs = _many(4, 3)
    every = [f"user{i}@x.com" for i in range(4)]
    full = split_questions(qs, "inbox", 0.25, seed=5, inboxes=every)
    (test_inbox,) = {q.inbox_address for q in full["test"]}
    fewer = [q for q in qs if q.inbox_address != test_inbox]  # that inbox yielded nothing this time
    again = split_questions(fewer, "inbox", 0.25, seed=5, inboxes=every)
    assert again["test"] == [] and again["train"] == fewer


def test_split_by_time_puts_test_strictly_later() -> None:
    qs = _many(2, 10)
    parts = split_questions(qs, "time", test_fraction=0.25)
    assert parts["train"] and parts["test"]
    assert max(q.query_date for q in parts["train"]) < min(q.query_date for q in parts["test"])
    assert len(parts["train"]) + len(parts["test"]) == len(qs)


def test_impossible_splits_are_clear_errors() -> None:
    with pytest.raises(SplitError, match="at least two inboxes"):
        split_questions(_many(1, 4), "inbox")
    with pytest.raises(SplitError, match="not among"):
        split_questions(_many(3, 2), "inbox", test_inboxes=["someone@else.com"])


def test_split_cli_writes_disjoint_files(tmp_path: Path) -> None:
    src = tmp_path / "all.jsonl"
    write_questions(src, _many(5, 3))
    res = runner.invoke(app, ["questions", "split", str(src), "--by", "inbox", "--json"])
    assert res.exit_code == 0, res.output
    train = load_questions(split_path(src, "train"))
    test = load_questions(split_path(src, "test"))
    assert not {q.inbox_address for q in train} & {q.inbox_address for q in test}
    assert len(train) + len(test) == 15
    one = tmp_path / "one.jsonl"
    write_questions(one, _many(1, 3))
    res = runner.invoke(app, ["questions", "split", str(one), "--by", "inbox"])
    assert res.exit_code == 2 and "at least two inboxes" in res.stderr


def test_config_files_yaml_and_toml_with_flag_overrides(tmp_path: Path) -> None:
    from inboxrl.questions.config import ConfigFileError, load_config

    y = tmp_path / "q.yaml"
    y.write_text("batch_size: 7\nrealism_threshold: 0.7\ntest_inboxes: [A@X.com]\n", encoding="utf-8")
    cfg = load_config(y, batch_size=3, seed=None)
    assert (cfg.batch_size, cfg.realism_threshold, cfg.seed, cfg.test_inboxes) == (3, 0.7, 0, ["a@x.com"])
    t = tmp_path / "q.toml"
    t.write_text("[questions]\nsplit = 'time'\nmax_days_after = 10\n", encoding="utf-8")
    assert (load_config(t).split, load_config(t).max_days_after) == ("time", 10)
    bad = tmp_path / "bad.yaml"
    bad.write_text("min_body_chars: 900\nmax_body_chars: 100\n", encoding="utf-8")
    with pytest.raises(ConfigFileError, match="min_body_chars"):
        load_config(bad)
    res = runner.invoke(app, ["questions", "generate", "--db", "x.db", "--inbox", "a@x.com", "--model", "m",
                              "--out", str(tmp_path / "o.jsonl"), "--config", str(bad)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
