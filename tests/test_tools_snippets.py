"""Snippets mark what FTS5 matched, on real mail: stems, case, diacritics, matches deep inside long bodies."""

from __future__ import annotations

import re

from inboxrl.tools.snippets import snippet

pytest_plugins = ["tools_store"]  # the tools_db / tools_raw fixtures


def _marked(s: str) -> list[str]:
    return [m.lower() for m in re.findall(r"\[([^\]]+)\]", s)]


def test_stem_variants_are_marked_like_fts5_matches_them(tools_raw):
    # FTS5 (porter) matches "meetings" to "meeting"; the snippet must mark it too
    subject, body = tools_raw.execute(
        "SELECT m.subject, m.body FROM messages_fts f JOIN messages m ON m.id = f.rowid "
        "WHERE messages_fts MATCH 'meetings' AND m.body LIKE '%meeting %' AND m.body NOT LIKE '%meetings%' "
        "LIMIT 1").fetchone()
    s = snippet(subject, body, ["meetings"])
    assert "meeting" in _marked(s)


def test_match_deep_in_a_long_body_is_found_and_the_snippet_is_short(tools_raw):
    rows = tools_raw.execute("SELECT subject, body FROM messages WHERE length(body) > 25000 LIMIT 20").fetchall()
    assert rows
    for subject, body in rows:
        words = [w for w in re.findall(r"[A-Za-z]{7,}", body[20000:23000]) if w.lower() not in body[:19000].lower()]
        if not words:
            continue
        word = words[len(words) // 2].lower()
        s = snippet(subject, body, [word], size=16)
        assert any(m[:4] == word[:4] for m in _marked(s)), (word, s)  # the word, or a stem variant of it
        assert len(re.findall(r"[^\W_]+", s)) <= 16
        assert s.startswith("…")


def test_subject_is_used_when_only_it_matches_and_case_and_accents_fold():
    s = snippet("Résumé of Sanjeev KHANNA", "Please see the attached file.", ["resume", "khanna"])
    assert _marked(s) == ["résumé", "khanna"]
    assert snippet("", "", ["anything"]) == ""
    assert snippet("Hello", "short body without the word", ["zzz"]) == "short body without the word"
