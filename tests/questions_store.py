"""The real store the question tests run on: the store engineer's `enron_store` fixture when it exists, else a
store built here with the real ingest from a few real kaminski-v folders. Imported by tests/test_questions_*.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(os.environ.get("INBOXRL_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")).resolve()
KAMINSKI = SHARED / "data" / "enron-mbox" / "kaminski-v"
ARTE_QUESTIONS = SHARED / "data" / "art-e-questions" / "kaminski-train.jsonl"
INBOX = "vince.kaminski@enron.com"
SECOND_INBOX = "shirley.crenshaw@enron.com"  # Vince's assistant: in much of his mail, so a second real inbox


@pytest.fixture(scope="session")
def questions_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        return str(request.getfixturevalue("enron_store"))
    except pytest.FixtureLookupError:
        pass
    from inboxrl.store.ingest import ingest

    db = tmp_path_factory.mktemp("questions_store") / "kaminski.db"
    ingest([KAMINSKI / f"{f}.mbox.xz" for f in ("universities", "conferences", "rice")], db, workers=1)
    return str(db)
