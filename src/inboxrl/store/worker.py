"""What a parser process runs: read one unit, parse its messages. Kept free of heavy imports (no pydantic, no
sqlite) because every spawned worker imports this module before it can start."""

from __future__ import annotations

import json
from dataclasses import dataclass

from inboxrl.store.parse import DEFAULT_MAX_YEAR, DEFAULT_MIN_YEAR, ParseError, parse_message
from inboxrl.store.sources import SourceUnit, read_unit

_YEARS = (DEFAULT_MIN_YEAR, DEFAULT_MAX_YEAR)


def init_worker(min_year: int, max_year: int) -> None:
    global _YEARS
    _YEARS = (min_year, max_year)


# One parsed message, as a plain tuple because tuples pickle several times faster than objects and every
# record crosses a process boundary:
# (position, message_id, subject, from_addr, from_name, date, date_raw, date_ok, body, attachments_json,
#  content_hash, participants_json '[[address, name, role], ...]')
# Participants travel as JSON so that SQLite's json_each expands them: one bound row per message.
Record = tuple
# Positions in a Record of the fields the writer looks at; the ones from REC_SUBJECT up to REC_CONTENT_HASH
# (subject .. attachments_json) go into the `messages` row in this order, so the writer copies them as a slice.
REC_MESSAGE_ID, REC_SUBJECT, REC_DATE, REC_CONTENT_HASH, REC_PARTICIPANTS = 1, 2, 5, 10, 11


@dataclass
class UnitResult:
    unit: SourceUnit
    records: list[Record]
    skips: list[tuple[str, str]]


def _skip_reason(e: BaseException) -> str:
    if isinstance(e, ParseError):
        return str(e)
    return f"parse error: {type(e).__name__}: {str(e)[:120]}"


def parse_unit(unit: SourceUnit) -> UnitResult:
    """Reads and parses one unit; runs in a worker. Every failure becomes a skip, never an exception."""
    try:
        rr = read_unit(unit)
    except Exception as e:  # read_unit already handles OSError; anything else is a bug worth recording
        return UnitResult(unit, [], [("file", f"unreadable: {type(e).__name__}: {e}")])
    skips = list(rr.skips)
    records: list[Record] = []
    for pos, raw in rr.messages:
        try:
            m = parse_message(raw, *_YEARS)
        except Exception as e:
            skips.append((pos, _skip_reason(e)))
            continue
        records.append(
            (
                pos,
                m.message_id,
                m.subject,
                m.from_addr,
                m.from_name,
                m.date,
                m.date_raw,
                int(m.date_ok),
                m.body,
                json.dumps(m.attachments, ensure_ascii=False) if m.attachments else "[]",
                m.content_hash,
                json.dumps([(p.address, p.name, p.role) for p in m.participants], ensure_ascii=False),
            )
        )
    return UnitResult(unit, records, skips)
