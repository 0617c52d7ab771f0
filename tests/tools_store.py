"""Fixtures shared by the tools tests (tests/test_tools_*.py load this with `pytest_plugins`): the real store of
kaminski-v mail from conftest's `enron_store`, and an independent read-only connection to check answers against."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tools_db(enron_store: Path) -> str:
    return str(enron_store)


@pytest.fixture(scope="session")
def tools_raw(tools_db: str) -> Iterator[sqlite3.Connection]:
    """Written without the tools' code, so that tests check the tools against the tables themselves."""
    conn = sqlite3.connect(f"file:{tools_db}?mode=ro", uri=True, check_same_thread=False)
    yield conn
    conn.close()
