"""`evaluate` on the real store and real Kaminski questions with the real lexical judge: append-as-you-go, resume,
a dead backend. The backend is SCRIPTED (deterministic answers) so that what is written can be checked exactly."""

from __future__ import annotations

import json

import pytest

from inboxrl.agent.config import AgentConfig
from inboxrl.agent.scripted import ScriptedBackend
from inboxrl.evaluation.run import METRICS, TRAJECTORIES, EvalAborted, evaluate
from inboxrl.judge.registry import load_judge
from inboxrl.models.base import ChatResponse
from inboxrl.questions.schema import load_questions
from inboxrl.trajectory import read_jsonl


@pytest.fixture(scope="module")
def questions(questions_path):
    return load_questions(questions_path, limit=4)


HARNESS = AgentConfig(require_search_before_answer=False)  # scripts answer at once


def answer(text: str, sources: list[str]) -> str:
    return json.dumps({"name": "return_final_answer", "arguments": {"answer": text, "sources": sources}})


def scripts_for(questions) -> dict[str, list[str]]:
    """q0 answered with its golden answer and sources, q1 wrongly, q2 "I don't know", q3 never answers."""
    s = {questions[0].id: [answer(questions[0].answer, questions[0].message_ids)],
         questions[1].id: [answer("On 1 January 1990, in Paris, with 17 people.", [])],
         questions[2].id: [answer("I don't know", [])],
         questions[3].id: ["thinking..."] * 10}
    return s


def test_scripted_eval_writes_judged_trajectories_and_resumes(enron_store, questions, tmp_path):
    backend = ScriptedBackend(scripts_for(questions), name="scripted-a")
    judge = load_judge("lexical")
    cfg = AgentConfig(max_turns=3, require_search_before_answer=False)
    res = evaluate(questions, ["scripted-a"], enron_store, judge, cfg, tmp_path, concurrency=2,
                   backend_factory=lambda spec: backend)
    assert res.written == 4 and res.skipped == 0
    trajs = list(read_jsonl(tmp_path / TRAJECTORIES))
    assert {t.question_id for t in trajs} == {q.id for q in questions}
    assert all(t.rubric is not None and t.reward is not None for t in trajs)
    assert all(x.input_ids is None and x.output_ids is None for t in trajs for x in t.turns)
    by = {t.question_id: t for t in trajs}
    assert by[questions[0].id].rubric.answer_correct and by[questions[0].id].rubric.sources_correct
    assert by[questions[1].id].rubric.attempted_answer and not by[questions[1].id].rubric.answer_correct
    assert by[questions[2].id].rubric.said_dont_know
    assert by[questions[3].id].rubric.ran_out_of_turns and by[questions[3].id].stop_reason == "out_of_turns"

    m = json.loads((tmp_path / METRICS).read_text())["models"]["scripted-a"]
    assert m["n"] == 4 and m["accuracy"] == 0.25 and m["hallucination_rate"] == 0.25
    assert m["dont_know_rate"] == 0.25 and m["out_of_turns_rate"] == 0.25 and m["format_error_rate"] == 0.25
    assert m["sources_correct_rate"] == 0.25

    # Second run, same directory: nothing new is run or written, metrics stay the same.
    backend2 = ScriptedBackend(scripts_for(questions), name="scripted-a")
    res2 = evaluate(questions, ["scripted-a"], enron_store, judge, cfg, tmp_path, concurrency=2,
                    backend_factory=lambda spec: backend2)
    assert res2.written == 0 and res2.skipped == 4 and backend2.requests == []
    assert len(list(read_jsonl(tmp_path / TRAJECTORIES))) == 4
    assert res2.models["scripted-a"]["accuracy"] == 0.25


def test_scripted_dead_backend_aborts_and_keeps_finished_work(enron_store, questions, tmp_path):
    dead = ChatResponse(error="Connection refused (http://127.0.0.1:9/v1)")
    scripts = {questions[0].id: [answer("I don't know", [])]}
    for q in questions[1:]:
        scripts[q.id] = [dead]
    backend = ScriptedBackend(scripts, name="scripted-dead")
    with pytest.raises(EvalAborted, match="Connection refused"):
        evaluate(questions, ["scripted-dead"], enron_store, load_judge("lexical"), HARNESS, tmp_path,
                 concurrency=1, backend_factory=lambda spec: backend)
    kept = list(read_jsonl(tmp_path / TRAJECTORIES))
    assert [t.question_id for t in kept] == [questions[0].id]  # backend-error episodes are not written

    # Resume once the endpoint is back: only the missing three are run.
    healthy = ScriptedBackend(default=[answer("I don't know", [])], name="scripted-dead")
    res = evaluate(questions, ["scripted-dead"], enron_store, load_judge("lexical"), HARNESS, tmp_path,
                   concurrency=4, backend_factory=lambda spec: healthy)
    assert res.written == 3 and res.skipped == 1
    assert sorted(t.question_id for t in read_jsonl(tmp_path / TRAJECTORIES)) == sorted(q.id for q in questions)
