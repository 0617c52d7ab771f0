"""`inboxrl ingest` and `inboxrl inboxes` from the command line, against counts computed from the raw mail."""

from __future__ import annotations

import json
import lzma
import sqlite3
from collections import defaultdict

from typer.testing import CliRunner

from inboxrl.store.parse import parse_message
from inboxrl.store.sources import split_mbox
from store_helpers import store_app

runner = CliRunner()
app = store_app()


def test_inboxes_counts_match_raw_headers(enron_store, kaminski_dir):
    """An inbox is an address: its count is the number of distinct messages (duplicates once) that name it as
    sender or To/Cc/Bcc recipient in any copy, wherever filed."""
    addrs_by_hash: dict[str, set[str]] = defaultdict(set)
    for path in sorted(kaminski_dir.glob("*.mbox.xz")):
        for raw in split_mbox(lzma.decompress(path.read_bytes()))[0]:
            m = parse_message(raw)
            addrs_by_hash[m.content_hash].update(p.address for p in m.participants)
    want: dict[str, int] = defaultdict(int)
    for addrs in addrs_by_hash.values():
        for a in addrs:
            want[a] += 1
    r = runner.invoke(app, ["inboxes", "--db", str(enron_store), "--limit", "15", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 15
    assert [x["messages"] for x in rows] == sorted((x["messages"] for x in rows), reverse=True)
    for row in rows:
        assert row["messages"] == want[row["address"]], row
    top = {x["address"]: x for x in rows}
    assert "vince.kaminski@enron.com" in top
    assert top["vince.kaminski@enron.com"]["sent"] > 100
    table = runner.invoke(app, ["inboxes", "--db", str(enron_store), "--limit", "3"])
    assert table.exit_code == 0 and rows[0]["address"] in table.stdout


def test_inboxes_errors_are_one_line(tmp_path):
    r = runner.invoke(app, ["inboxes", "--db", str(tmp_path / "nope.db")])
    assert r.exit_code == 2 and "no store at" in r.output and "Traceback" not in r.output
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).execute("CREATE TABLE t(x)").connection.close()
    r = runner.invoke(app, ["inboxes", "--db", str(empty)])
    assert r.exit_code == 2 and "not a readable inboxrl store" in r.output


def test_ingest_cli_with_toml_config_and_summary_table(tmp_path, kaminski_dir):
    cfg = tmp_path / "ingest.toml"
    cfg.write_text("[ingest]\nworkers = 1\nmax_year = 2000\nbatch_messages = 50\n")
    db = tmp_path / "s.db"
    r = runner.invoke(
        app, ["ingest", str(kaminski_dir / "ut.mbox.xz"), "--db", str(db), "--config", str(cfg)]
    )
    assert r.exit_code == 0, r.output
    assert "messages read" in r.stdout and "duplicates" in r.stdout
    c = sqlite3.connect(db)
    _n, late, flagged = c.execute(
        "SELECT count(*), sum(date >= '2001'), sum(date_ok = 0) FROM messages"
    ).fetchone()
    assert late > 0 and flagged == late  # max_year = 2000 from the file: later mail kept but flagged
    again = runner.invoke(app, ["ingest", str(kaminski_dir / "ut.mbox.xz"), "--db", str(db), "--json"])
    assert json.loads(again.stdout)["stored"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("workers: lots\n")
    r = runner.invoke(
        app, ["ingest", str(kaminski_dir / "ut.mbox.xz"), "--db", str(db), "--config", str(bad)]
    )
    assert r.exit_code == 2 and "cannot read config" in r.output
