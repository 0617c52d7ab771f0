"""The store access API (inboxrl.store.access) on the real kaminski store: one id form, alias resolution, scope."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from inboxrl.questions.grounding import resolve_ids
from inboxrl.store.access import Store, StoreNotFound, normalise_id, open_readonly
from inboxrl.tools.base import Scope
from inboxrl.tools.base import normalise_id as tools_normalise_id
from inboxrl.tools.inbox import InboxTools

SRC = Path(__file__).resolve().parents[1] / "src" / "inboxrl"


def test_one_id_form_for_every_spelling() -> None:
    forms = ["<abc@x.com>", "abc@x.com", "  <abc@x.com> ", "<abc@x.com", "abc@x.com>", "< abc@x.com >"]
    assert {normalise_id(f) for f in forms} == {"<abc@x.com>"}
    assert normalise_id("") == normalise_id("  ") == normalise_id("<>") == ""
    assert tools_normalise_id is normalise_id  # the tools and the store agree by construction


def test_open_is_read_only_and_a_missing_store_is_a_clear_error(enron_store: Path, tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="mail store not found"):
        Store.open(tmp_path / "nope.db")
    conn = open_readonly(enron_store)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM aliases")
    finally:
        conn.close()


def _a_duplicate(store: Store) -> tuple[str, str, int]:
    """(an alias that is not the stored id, the stored id, the row) from the store's own tables."""
    row = store.conn.execute(
        "SELECT a.alias, m.message_id, m.id FROM aliases a JOIN messages m ON m.id = a.message_rowid"
        " WHERE a.alias != m.message_id LIMIT 1").fetchone()
    assert row is not None, "the kaminski store has duplicates kept as aliases"
    return str(row[0]), str(row[1]), int(row[2])


def test_resolve_any_copy_with_or_without_brackets(enron_store: Path) -> None:
    with Store.open(enron_store) as store:
        alias, stored, rowid = _a_duplicate(store)
        assert store.resolve(alias) == store.resolve(stored) == rowid
        assert store.resolve(alias.strip("<>")) == rowid
        assert store.resolve(f"  {stored}  ") == rowid
        assert store.message_id(rowid) == stored
        assert store.resolve("<no-such-id@nowhere>") is None
        assert store.resolve("") is None
        assert store.resolve("x" * 5000) is None
        assert store.resolve_many([alias, "<missing@x>"]) == {alias: rowid}
        assert resolve_ids(store.conn, [alias]) == {alias: rowid}  # grounding goes through the same API


def test_scope_is_one_rule_for_grounding_and_tools(enron_store: Path) -> None:
    with Store.open(enron_store) as store:
        inbox, rowid, day = store.conn.execute(
            "SELECT p.address, m.id, substr(m.date, 1, 10) FROM messages m JOIN participants p"
            " ON p.message_rowid = m.id WHERE m.date_ok = 1 AND p.role = 'to' LIMIT 1").fetchone()
        assert store.visible(rowid, inbox, before="2100-01-01")
        assert store.visible(rowid, inbox.upper(), before="2100-01-01")  # addresses compare lower-cased
        assert not store.visible(rowid, inbox, before=day)  # strictly before the question's day
        assert not store.visible(rowid, "nobody@nowhere.example", before="2100-01-01")
        stored = store.message_id(rowid)
        assert stored is not None
        tools = InboxTools(store.conn, Scope(inbox, before="2100-01-01"))
        assert tools.canonical_id(stored.strip("<>")) == stored
        assert InboxTools(store.conn, Scope(inbox, before=day)).canonical_id(stored) is None


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_store_imports_no_higher_layer() -> None:
    higher = ("inboxrl.questions", "inboxrl.tools", "inboxrl.agent", "inboxrl.judge", "inboxrl.scoring",
              "inboxrl.training", "inboxrl.evaluation", "inboxrl.viewer", "inboxrl.models")
    bad = {f"{p.name}: {m}" for p in (SRC / "store").glob("*.py") for m in _imports(p) if m.startswith(higher)}
    assert not bad


def test_scope_size_and_visible_rows_match_the_tables(enron_store: Path) -> None:
    inbox, day = "vince.kaminski@enron.com", "2001-01-01"
    raw = sqlite3.connect(f"file:{enron_store}?mode=ro", uri=True)  # written without the Store's code
    try:
        want = {r[0] for r in raw.execute(
            "SELECT DISTINCT m.id FROM messages m JOIN participants p ON p.message_rowid = m.id"
            " WHERE p.address = ? AND m.date_ok = 1 AND m.date < ?", (inbox, day))}
        late = raw.execute("SELECT m.id FROM messages m JOIN participants p ON p.message_rowid = m.id"
                           " WHERE p.address = ? AND m.date >= ? LIMIT 1", (inbox, day)).fetchone()[0]
    finally:
        raw.close()
    with Store.open(enron_store) as store:
        assert store.scope_size(inbox, before=day) == len(want) > 100
        sample = sorted(want)[:20]
        rows = store.visible_rows([*sample, late], inbox, before=day)
        assert set(rows) == set(sample)  # the later message is not returned
        assert all(rows[r][1] == store.message_id(r) for r in sample)
        msg = store.message(sample[0])
        assert msg is not None and msg[0] == rows[sample[0]][1]
        assert inbox in {a for a, _ in store.participants(sample[0])}
        assert store.message(10**9) is None and store.participants(10**9) == []
