"""Shared test fixtures: the real Enron data in ../shared, and one real store built from it per test session.

The store is built from ALL of kaminski-v (49 folders, 7,022 messages; 100 of the 107 grounded kaminski-train
questions resolve in it), in a few seconds on this machine, so every part's tests search real mail.
"""

from __future__ import annotations

import os

# Before anything imports torch or the hub clients: one thread (the 2 cores are shared) and no network.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INBOX = "vince.kaminski@enron.com"


def _shared() -> Path:
    return Path(os.environ.get("INBOXRL_SHARED", REPO.parent / "shared")).resolve()


def _missing(msg: str) -> None:
    if os.environ.get("CI") == "true":  # CI must not pass by skipping every test that reads real mail
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared data folder (../shared or $INBOXRL_SHARED); tests needing it skip when it is absent, and fail
    when CI=true."""
    d = _shared()
    if not (d / "data" / "enron-mbox").is_dir():
        _missing(f"shared data not found at {d} (set INBOXRL_SHARED)")
    return d


@pytest.fixture(scope="session")
def kaminski_dir(shared_dir: Path) -> Path:
    d = shared_dir / "data" / "enron-mbox" / "kaminski-v"
    if not d.is_dir():
        _missing(f"kaminski-v mail not found at {d}")
    return d


@pytest.fixture(scope="session")
def questions_path(shared_dir: Path) -> Path:
    p = shared_dir / "data" / "art-e-questions" / "kaminski-train.jsonl"
    if not p.is_file():
        _missing(f"question file not found at {p}")
    return p


@pytest.fixture(scope="session")
def enron_store(tmp_path_factory: pytest.TempPathFactory, kaminski_dir: Path) -> Path:
    """Path of a real SQLite store built once per session from all of kaminski-v. Treat it as read-only."""
    from inboxrl.store.ingest import ingest

    db = tmp_path_factory.mktemp("enron_store") / "kaminski.db"
    summary = ingest([kaminski_dir], db, workers=2)
    assert summary.store_messages > 6000, summary
    return db


@pytest.fixture(scope="session")
def full_store(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> Path:
    """All 325,616 mails of the shared corpus, as the quickstart builds it: $INBOXRL_FULL_DB or data/enron.db when
    present (CI passes the quickstart's), else ingested once per session (about a minute). Treat it as read-only."""
    for p in (os.environ.get("INBOXRL_FULL_DB"), REPO / "data" / "enron.db"):
        if p and Path(p).is_file():
            return Path(p)
    from inboxrl.store.ingest import ingest

    db = tmp_path_factory.mktemp("full_store") / "enron.db"
    ingest([shared_dir / "data" / "enron-mbox"], db, workers=2)
    return db
