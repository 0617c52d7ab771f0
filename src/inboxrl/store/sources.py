"""Finding mail on disk and reading it as raw messages.

A *unit* is what ingest commits in one transaction and remembers in `ingested_sources`: one mbox file (plain,
xz, gz, bz2), one `.eml`, one Maildir, one Enron maildir folder (the `1.`, `2.` ... files directly in it), or
one byte range of a Kaggle CSV (the CSV is 1.4 GB, so it is cut into ranges that workers can parse in parallel
and that commit separately).

Reading never raises on bad data: a truncated or corrupt compressed file keeps what was decoded, and the
problem comes back as a skip with a reason. Only a path that does not exist is an error (`SourceError`),
because that is the user's mistake, not the data's.
"""

from __future__ import annotations

import bz2
import csv
import lzma
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

COMPRESSED = (".xz", ".gz", ".bz2")
MBOX_SUFFIXES = (".mbox", ".mbx")
CSV_CHUNK_BYTES = 32 << 20  # a Kaggle CSV range per unit; ~16k messages
_READ_CHUNK = 1 << 16  # compressed bytes fed at a time: a corrupt block loses at most this much
_ENRON_FILE = re.compile(r"^\d+\.?$")
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]?")


class SourceError(ValueError):
    """A source path that cannot be used at all (missing, unreadable); the message is meant for the user."""


@dataclass(frozen=True)
class SourceUnit:
    key: str  # ingested_sources.path: the resolved path, plus '#start-end' for a CSV range
    path: str
    kind: str  # 'mbox' | 'eml' | 'maildir' | 'enron-dir' | 'csv'
    size: int  # bytes (for folders: the sum over their message files)
    mtime: float  # for folders: the newest message file
    label: str  # what messages.source gets: 'custodian/folder'
    start: int = 0  # CSV byte range
    end: int = -1


@dataclass
class ReadResult:
    """A unit's raw messages as (position, bytes), and what could not be read as (position, reason)."""

    messages: list[tuple[str, bytes]]
    skips: list[tuple[str, str]]


def _label(path: Path) -> str:
    name = path.name
    for suf in COMPRESSED + MBOX_SUFFIXES + (".eml", ".csv"):
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    for suf in MBOX_SUFFIXES:
        if name.lower().endswith(suf):
            name = name[: -len(suf)]
    return f"{path.parent.name}/{name}" if path.parent.name else name


def _is_maildir(d: Path) -> bool:
    return (d / "cur").is_dir() and (d / "new").is_dir()


def _sniff(path: Path) -> str | None:
    """'mbox', 'eml', or None for a file that is not mail."""
    low = path.name.lower()
    if low.endswith(".csv"):
        return "csv"
    if low.endswith(COMPRESSED) or low.endswith(MBOX_SUFFIXES):
        return "mbox"  # a compressed single message is handled by the mbox reader too
    if low.endswith(".eml"):
        return "eml"
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if head.startswith(b"From "):
        return "mbox"
    if _HEADER_LINE.match(head) and b"\n" in head:
        return "eml"
    return None


def _file_unit(path: Path, kind: str) -> list[SourceUnit]:
    st = path.stat()
    resolved = str(path.resolve())
    if kind == "csv" and st.st_size > CSV_CHUNK_BYTES:
        return [
            SourceUnit(f"{resolved}#{a}-{b}", resolved, "csv", st.st_size, st.st_mtime, _label(path), a, b)
            for a, b in csv_ranges(path, CSV_CHUNK_BYTES)
        ]
    return [SourceUnit(resolved, resolved, kind, st.st_size, st.st_mtime, _label(path))]


def _dir_unit(d: Path, files: list[Path], kind: str) -> SourceUnit:
    size, mtime = 0, 0.0
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        size += st.st_size
        mtime = max(mtime, st.st_mtime)
    resolved = str(d.resolve())
    return SourceUnit(resolved, resolved, kind, size + len(files), mtime, _label(d))


def _not_regular(path: Path) -> str | None:
    """Why a path that is neither a folder nor a regular file cannot be read as mail (a FIFO would block the
    reader forever, a device never ends), or None for a folder or regular file."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return "broken symlink" if path.is_symlink() else f"unreadable: {e.strerror or e}"
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return None
    kind = ("FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode)
            else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file")
    return f"not a regular file ({kind})"


def discover(paths: Iterable[str | Path]) -> tuple[list[SourceUnit], list[tuple[str, str]]]:
    """All units under the given paths, and (path, reason) for files found that are not mail.

    Raises SourceError for a path that does not exist, before anything is written.
    """
    roots = [Path(p) for p in paths]
    for r in roots:
        if not r.exists():
            raise SourceError(f"source not found: {r}")
        if not os.access(r, os.R_OK):
            raise SourceError(f"source not readable: {r}")
    units: list[SourceUnit] = []
    unknown: list[tuple[str, str]] = []
    seen: set[str] = set()
    walked: set[tuple[int, int]] = set()  # (device, inode) of each folder walked: symlink loops end here

    def add(us: list[SourceUnit]) -> None:
        for u in us:
            if u.key not in seen:
                seen.add(u.key)
                units.append(u)

    def walk(d: Path) -> None:
        try:
            st = d.stat()
        except OSError as e:
            unknown.append((str(d), f"unreadable folder: {e.strerror}"))
            return
        if (st.st_dev, st.st_ino) in walked:
            return
        walked.add((st.st_dev, st.st_ino))
        if _is_maildir(d):
            files = [f for sub in ("cur", "new") for f in sorted((d / sub).iterdir()) if f.is_file()]
            add([_dir_unit(d, files, "maildir")])
        try:
            entries = sorted(d.iterdir())
        except OSError as e:
            unknown.append((str(d), f"unreadable folder: {e.strerror}"))
            return
        enron_files = []
        for entry in entries:
            if entry.name.startswith(".") and not (entry.is_dir() and _is_maildir(entry)):
                continue
            why = _not_regular(entry)
            if why is not None:
                unknown.append((str(entry.absolute()), why))
            elif entry.is_dir():
                if _is_maildir(d) and entry.name in ("cur", "new", "tmp"):
                    continue
                walk(entry)
            else:
                if _ENRON_FILE.match(entry.name):
                    enron_files.append(entry)
                    continue
                kind = _sniff(entry)
                if kind is None:
                    unknown.append((str(entry.resolve()), "not a mail file (unknown format)"))
                else:
                    add(_file_unit(entry, kind))
        if enron_files:
            add([_dir_unit(d, enron_files, "enron-dir")])

    for r in roots:
        why = _not_regular(r)
        if why is not None:
            unknown.append((str(r.absolute()), why))
        elif r.is_dir():
            walk(r)
        else:
            kind = _sniff(r) or ("eml" if _ENRON_FILE.match(r.name) else None)
            if kind is None:
                unknown.append((str(r.resolve()), "not a mail file (unknown format)"))
            else:
                add(_file_unit(r, kind))
    return units, unknown


# ---------------------------------------------------------------------------------------------------- reading


def read_compressed(path: str) -> tuple[bytes, str | None]:
    """All bytes that decompress, and the reason it stopped early (None when the file was whole).

    Decompressor objects are fed small blocks so that a truncated file keeps everything up to the cut.
    """
    low = path.lower()
    out: list[bytes] = []
    problem: str | None = None
    kind = "xz" if low.endswith(".xz") else "gz" if low.endswith(".gz") else "bz2"

    def new():  # type: ignore[no-untyped-def]
        if kind == "xz":
            return lzma.LZMADecompressor()
        if kind == "gz":
            return zlib.decompressobj(wbits=47)  # gzip or zlib header
        return bz2.BZ2Decompressor()

    dec = new()
    try:
        with open(path, "rb") as f:
            while True:
                pending = f.read(_READ_CHUNK)
                if not pending:
                    break
                while pending:
                    if dec.eof:
                        if not pending.strip(b"\x00"):
                            break  # stream padding
                        dec = new()  # a concatenated stream (multi-member gzip, xz)
                    out.append(dec.decompress(pending))
                    pending = dec.unused_data if dec.eof else b""
        if not dec.eof:
            problem = f"truncated {kind}: stream ended early"
    except (lzma.LZMAError, zlib.error, OSError, EOFError, ValueError) as e:
        problem = f"corrupt {kind}: {e}"
    return b"".join(out), problem


_FROM_QUOTE = re.compile(rb"^>(>*From )", re.MULTILINE)


def split_mbox(data: bytes) -> tuple[list[bytes], bool]:
    """Messages of an mbox, `>From ` unquoted; second value: data before the first separator looked like mail.

    Any line starting with 'From ' separates messages: the writers of the shared corpus quoted body lines
    (`>From `), and separators there are not always preceded by a blank line, so that is the only reliable
    rule.
    """
    if data.startswith(b"From "):
        pieces = data.split(b"\nFrom ")
        lead = b""
    else:
        pieces = data.split(b"\nFrom ")
        lead = pieces.pop(0)
    out = []
    for p in pieces:
        nl = p.find(b"\n")
        msg = p[nl + 1 :] if nl >= 0 else b""
        if b">From " in msg:
            msg = _FROM_QUOTE.sub(rb"\1", msg)
        out.append(msg)
    return out, bool(lead.strip())


def _read_mbox(unit: SourceUnit) -> ReadResult:
    skips: list[tuple[str, str]] = []
    if unit.path.lower().endswith(COMPRESSED):
        data, problem = read_compressed(unit.path)
    else:
        with open(unit.path, "rb") as f:
            data = f.read()
        problem = None
    if not data.startswith(b"From ") and b"\nFrom " not in data:
        msgs = [("0", data)] if data.strip() else []  # a single (compressed) message, not an mbox
        if problem:
            skips.append(("file", problem))
            if msgs:
                skips.append(("0", "incomplete message (source truncated)"))
                msgs = []
        return ReadResult(msgs, skips)
    pieces, lead = split_mbox(data)
    if lead:
        lead_bytes = data.split(b"\nFrom ", 1)[0]
        if _HEADER_LINE.match(lead_bytes):
            pieces.insert(0, lead_bytes)  # a first message whose separator line is missing
        else:
            skips.append(("lead", "data before the first 'From ' line"))
    msgs = [(str(i), m) for i, m in enumerate(pieces)]
    if not problem and not data.endswith(b"\n"):
        problem = "truncated mbox: file ends mid-line"  # mbox writers always end a message with a newline
    if problem:
        skips.append(("file", problem))
        if msgs:  # the message at the cut is incomplete: never store half a message as if whole
            pos, _ = msgs.pop()
            skips.append((pos, "incomplete message (source truncated)"))
    return ReadResult(msgs, skips)


def _read_files(files: list[Path], base: Path) -> ReadResult:
    msgs: list[tuple[str, bytes]] = []
    skips: list[tuple[str, str]] = []
    for f in files:
        pos = str(f.relative_to(base))
        try:
            msgs.append((pos, f.read_bytes()))
        except OSError as e:
            skips.append((pos, f"unreadable file: {e.strerror}"))
    return ReadResult(msgs, skips)


def csv_ranges(path: Path, chunk: int) -> list[tuple[int, int]]:
    """Byte ranges of a CSV that start and end on record boundaries (a newline outside quotes)."""
    ranges = []
    start = 0
    pos = 0
    quoted = False
    with path.open("rb") as f:
        header = f.readline()
        pos = start = len(header)
        for line in f:
            pos += len(line)
            if line.count(b'"') % 2:
                quoted = not quoted
            if not quoted and pos - start >= chunk:
                ranges.append((start, pos))
                start = pos
    if pos > start:
        ranges.append((start, pos))
    return ranges


def _read_csv(unit: SourceUnit) -> ReadResult:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    msgs: list[tuple[str, bytes]] = []
    skips: list[tuple[str, str]] = []
    with open(unit.path, "rb") as f:
        header_line = f.readline()
        header = next(csv.reader([header_line.decode("utf-8", "surrogateescape")]), [])
        cols = [h.strip().lower() for h in header]
        if "message" not in cols:
            return ReadResult([], [("file", "CSV without a 'message' column")])
        mi = cols.index("message")
        fi = cols.index("file") if "file" in cols else None
        start = unit.start or len(header_line)
        f.seek(start)
        data = f.read() if unit.end < 0 else f.read(unit.end - start)
    text = data.decode("utf-8", "surrogateescape")
    reader = csv.reader(text.splitlines(keepends=True))
    row_no = 0
    try:
        for row in reader:
            row_no += 1
            pos = f"{unit.start}+{row_no}"
            if fi is not None and len(row) > fi and row[fi]:
                pos = row[fi]
            if len(row) <= mi:
                skips.append((pos, "CSV row without a message field"))
                continue
            msgs.append((pos, row[mi].encode("utf-8", "surrogateescape")))
    except csv.Error as e:
        skips.append((f"{unit.start}+{row_no + 1}", f"broken CSV: {e}"))
    return ReadResult(msgs, skips)


def read_unit(unit: SourceUnit) -> ReadResult:
    """The raw messages of a unit. Never raises on bad data; an unreadable file becomes one skip."""
    try:
        if unit.kind == "mbox":
            return _read_mbox(unit)
        if unit.kind == "eml":
            return ReadResult([("0", Path(unit.path).read_bytes())], [])
        if unit.kind == "csv":
            return _read_csv(unit)
        d = Path(unit.path)
        if unit.kind == "maildir":
            files = [f for sub in ("cur", "new") if (d / sub).is_dir() for f in sorted((d / sub).iterdir())]
            return _read_files([f for f in files if f.is_file()], d)
        if unit.kind == "enron-dir":
            files = sorted(
                (f for f in d.iterdir() if f.is_file() and _ENRON_FILE.match(f.name)),
                key=lambda f: (len(f.name), f.name),
            )
            return _read_files(files, d)
    except OSError as e:
        return ReadResult([], [("file", f"unreadable: {e.strerror or e}")])
    return ReadResult([], [("file", f"unknown source kind {unit.kind}")])
