"""The real store the tools tests run on: the store engineer's `enron_store` fixture when it exists, else a store
built here with the real ingest from a few real kaminski-v folders. Imported by the tests/test_tools_*.py modules."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(os.environ.get("INBOXRL_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared")).resolve()
KAMINSKI = SHARED / "data" / "enron-mbox" / "kaminski-v"
INBOX = "vince.kaminski@enron.com"


@pytest.fixture(scope="session")
def tools_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    try:
        return str(request.getfixturevalue("enron_store"))
    except pytest.FixtureLookupError:
        pass
    from inboxrl.store.ingest import ingest

    db = tmp_path_factory.mktemp("tools_store") / "kaminski.db"
    ingest([KAMINSKI / f"{f}.mbox.xz" for f in ("inbox", "notes_inbox", "sent_items")], db, workers=1)
    return str(db)


@pytest.fixture(scope="session")
def tools_raw(tools_db: str) -> sqlite3.Connection:
    """An independent read-only connection, for checking the tools' answers against the tables themselves."""
    conn = sqlite3.connect(f"file:{tools_db}?mode=ro", uri=True, check_same_thread=False)
    yield conn
    conn.close()
