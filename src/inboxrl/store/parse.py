"""Turning one raw message (bytes) into the fields the store keeps.

Real mail is messy: Enron declares `us-ascii` and ships cp1252 bytes, headers carry RFC 2047 words in charsets
Python does not know, dates run from 1979 to 2044. Everything here degrades instead of failing: an unknown
charset falls back to utf-8/cp1252/latin-1, an unreadable date becomes NULL with `date_ok=0`, a missing
Message-ID becomes a stable id made from the content. Only a message with no mail headers at all is refused
(`ParseError`), because storing it would invent a message that never existed.

`policy=compat32` is used because it parses about 14x faster than `policy.default`; the price is that header
decoding is done here by hand.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import feedparser
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from html.parser import HTMLParser

from inboxrl.store.access import normalise_id

# Years outside this window are kept but flagged (date_ok=0): Enron holds dates from 1979 to 2044.
DEFAULT_MIN_YEAR = 1990
DEFAULT_MAX_YEAR = 2030

GENERATED_ID_DOMAIN = "inboxrl.generated"

_MAX_X_NAMES = 50
_MAIL_HEADERS = ("from", "to", "cc", "bcc", "subject", "date", "message-id", "sender", "reply-to", "received")


class ParseError(ValueError):
    """The bytes are not a mail message; the message is the skip reason."""


@dataclass
class Participant:
    address: str
    name: str
    role: str  # 'from' | 'to' | 'cc' | 'bcc'


@dataclass
class ParsedMessage:
    message_id: str  # with angle brackets
    subject: str
    from_addr: str
    from_name: str
    date: str | None  # 'YYYY-MM-DDTHH:MM:SSZ' in UTC
    date_raw: str
    date_ok: bool
    body: str
    attachments: list[str] = field(default_factory=list)
    participants: list[Participant] = field(default_factory=list)
    content_hash: str = ""
    generated_id: bool = False


# -------------------------------------------------------------------------------------------- charsets

_CHARSET_ALIASES = {
    "unknown-8bit": None,
    "x-unknown": None,
    "unknown": None,
    "default": None,
    "x-user-defined": None,
    "ansi_x3.4-1968": "ascii",
    "us-ascii": "ascii",
    "iso-8859-8-i": "iso-8859-8",
    "ks_c_5601-1987": "euc-kr",
    "x-mac-roman": "mac-roman",
}


def _codec(charset: str | None) -> str | None:
    """A Python codec name for a declared charset, or None when it is unknown or meaningless."""
    if not charset:
        return None
    cs = charset.strip().strip('"').lower().split("*", 1)[0]  # RFC 2231 'utf-8*en'
    if cs in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[cs]
    try:
        return codecs.lookup(cs).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decodes with the declared charset if it fits, else utf-8, else cp1252, else latin-1 (never fails).

    A declared us-ascii is not trusted (Enron declares it for cp1252 text), so ascii falls through to utf-8.
    """
    if data.isascii():
        return data.decode("ascii")
    codec = _codec(charset)
    tried = []
    for c in (codec, "utf-8", "cp1252"):
        if c is None or c == "ascii" or c in tried:
            continue
        tried.append(c)
        try:
            return data.decode(c)
        except (UnicodeDecodeError, LookupError):
            continue
    if codec and codec not in ("ascii",):
        try:
            return data.decode(codec, errors="replace")
        except LookupError:
            pass
    return data.decode("latin-1")


def _unsurrogate(value: str) -> str:
    """The parser keeps undecodable header bytes as surrogates; turn them back into real text."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        pass
    try:
        raw = value.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # real text and raw bytes mixed: keep the text, decode the bytes alone
        raw = value.encode("utf-8", "surrogateescape")
    # Each run of 8-bit bytes on its own: one header may mix a latin-1 name with a UTF-8 address, and decoding
    # the whole as cp1252 (UTF-8 fails on the latin-1 byte) would turn the UTF-8 'ö' into 'Ã¶'.
    return _HIGH_RUN.sub(lambda m: decode_bytes(m.group(0)).encode("utf-8"), raw).decode("utf-8", "replace")


_HIGH_RUN = re.compile(rb"[\x80-\xff]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
_QHEX = re.compile(r"=([0-9A-Fa-f]{2})")
_BETWEEN_WORDS = re.compile(r"(\?=)\s+(=\?)")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_WS = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _decode_word(m: re.Match[str]) -> str:
    charset, enc, text = m.group(1), m.group(2).upper(), m.group(3)
    try:
        if enc == "B":
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=False)
        else:
            unquoted = _QHEX.sub(lambda h: chr(int(h.group(1), 16)), text.replace("_", " "))
            raw = unquoted.encode("latin-1", errors="replace")
    except (binascii.Error, ValueError):
        return m.group(0)
    return decode_bytes(raw, charset)


def decode_header_value(value: str | None) -> str:
    """Unfolds, repairs raw 8-bit bytes and decodes RFC 2047 words; whitespace collapses to single spaces."""
    if not value:
        return ""
    if not isinstance(value, str):  # a Header object from an odd code path
        value = str(value)
    if value.isascii() and "=?" not in value:  # most headers: only unfolding and whitespace to do
        out = " ".join(value.split())
        return out if out.isprintable() else " ".join(_CONTROL.sub(" ", out).split())
    value = _unsurrogate(_FOLD.sub("", value))
    if "=?" in value:
        value = _ENCODED_WORD.sub(_decode_word, _BETWEEN_WORDS.sub(r"\1\2", value))
    return _WS.sub(" ", _CONTROL.sub(" ", value)).strip()


# ------------------------------------------------------------------------------------------- addresses

_ANGLE = re.compile(r"<[^>]*>")
_SIMPLE_LIST = re.compile(r'^[^"<>()\\;:]*$')
_NO_QUOTES = re.compile(r'^[^"()\\;:]*$')


def parse_addresses(value: str) -> list[tuple[str, str]]:
    """(name, lower-cased address) pairs. Plain comma lists (most of Enron) skip the slow RFC 5322 parser."""
    if not value:
        return []
    value = _unsurrogate(value)
    out: list[tuple[str, str]] = []
    if _SIMPLE_LIST.match(value):  # folds are whitespace next to commas: strip() removes them
        return [("", a) for a in (p.strip() for p in value.lower().split(",")) if a]
    value = _FOLD.sub("", value)
    if _NO_QUOTES.match(value):  # 'name <addr>, addr, ...': no quoted commas, so splitting is safe and fast
        for part in value.split(","):
            lt = part.find("<")
            if lt < 0:
                addr, name = part.strip().lower(), ""
            else:
                gt = part.find(">", lt)
                addr = part[lt + 1 : gt if gt > 0 else len(part)].strip().lower()
                name = decode_header_value(part[:lt]).strip().strip('"').strip()
            if addr or name:
                out.append((name, addr))
        return out
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:  # the stdlib parser has raised on hostile input in some versions
        pairs = [("", p) for p in value.split(",")]
    for name, addr in pairs:
        addr = addr.strip().lower()
        name = decode_header_value(name).strip().strip('"').strip()
        if not addr and not name:
            continue
        out.append((name, addr))
    return out


def _x_names(value: str | None) -> list[str]:
    """Names from Enron's X-From/X-To/X-cc ('Vince J Kaminski <Vince J Kaminski/HOU/ECT@ECT>, ...')."""
    if not value:
        return []
    names = []
    for part in decode_header_value(value).split(","):
        name = (_ANGLE.sub("", part) if "<" in part else part).strip().strip('"').strip()
        if "@" in name or "/" in name:  # an address or a Notes path is not a name
            name = ""
        names.append(name)
    return names


# ---------------------------------------------------------------------------------------------------- dates


def parse_date(
    raw: str, min_year: int = DEFAULT_MIN_YEAR, max_year: int = DEFAULT_MAX_YEAR
) -> tuple[str | None, bool]:
    """('YYYY-MM-DDTHH:MM:SSZ' in UTC or None, date_ok). A year outside [min_year, max_year] is flagged."""
    if not raw:
        return None, False
    try:
        t = email.utils.parsedate_tz(raw)
    except Exception:
        t = None
    if t is None:
        return None, False
    try:
        offset = t[9] or 0
        dt = datetime(t[0], t[1], t[2], t[3], t[4], t[5]) - timedelta(seconds=offset)
    except (ValueError, OverflowError, TypeError):
        return None, False
    return dt.isoformat() + "Z", min_year <= dt.year <= max_year


# ---------------------------------------------------------------------------------------------------- bodies


class _HTMLText(HTMLParser):
    _BLOCK = frozenset({"p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre",
                        "hr"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self.hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body; script and style dropped, block tags become line breaks."""
    p = _HTMLText()
    try:
        p.feed(html)
        p.close()
    except Exception:  # html.parser is lenient, but never let markup abort a message
        pass
    lines = (_WS.sub(" ", line).strip() for line in "".join(p.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


INVALID_BASE64_NOTE = "[inboxrl: this part's base64 is invalid; its text is shown as sent]\n"


def _strict_base64(text: str) -> bytes | None:
    """The bytes of a base64 part, or None when it is not base64 (line breaks are the only whitespace allowed).
    The email package decodes leniently: it drops what is not base64 and decodes the rest into junk."""
    data = "".join(line.strip() for line in text.splitlines())
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _part_text(part: Message) -> str:
    if (part.get("Content-Transfer-Encoding") or "").strip().lower() == "base64":
        encoded = part.get_payload(decode=False)
        if isinstance(encoded, str) and _strict_base64(encoded) is None:
            return INVALID_BASE64_NOTE + _unsurrogate(encoded)
    payload = part.get_payload(decode=True)
    if payload is None:
        payload = part.get_payload()
        if isinstance(payload, list):
            return ""
        if isinstance(payload, str):
            payload = payload.encode("ascii", "surrogateescape")
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(payload, charset)


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if name is None:
        try:
            param = part.get_param("name")
        except Exception:
            param = None
        # RFC 2231 gives (charset, lang, value)
        name = email.utils.collapse_rfc2231_value(param) if isinstance(param, tuple) else param
    return decode_header_value(name) if name else None


def extract_body(msg: Message) -> tuple[str, list[str]]:
    """(body text, attachment names). text/plain wins; HTML is converted only when there is no plain text."""
    if not msg.is_multipart():
        ctype = msg.get_content_type()
        name = _filename(msg)
        if ctype == "text/html":
            return html_to_text(_part_text(msg)), []
        if ctype.startswith("text/") or ctype == "message/rfc822":
            return _part_text(msg), []
        return "", [name] if name else []
    plains: list[str] = []
    htmls: list[str] = []
    attachments: list[str] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        name = _filename(part)
        disp = (part.get("Content-Disposition") or "").split(";", 1)[0].strip().lower()
        if name or disp == "attachment":
            if name:
                attachments.append(name)
            continue
        if ctype == "text/plain":
            plains.append(_part_text(part))
        elif ctype == "text/html":
            htmls.append(_part_text(part))
    if plains:
        return "\n\n".join(t for t in plains if t), attachments
    if htmls:
        return "\n\n".join(html_to_text(h) for h in htmls), attachments
    return "", attachments


# ---------------------------------------------------------------------------------------------------- message

_HEADER_PARSER = BytesHeaderParser(policy=compat32)
_HEADER_RE: re.Pattern[str] = feedparser.headerRE  # type: ignore[attr-defined]  # the stdlib's own header grammar
_source_parse = compat32.header_source_parse
_CTYPE = re.compile(r"^\s*([!-~]+?/[!-~]+?)\s*(?:;|$)")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([^"';\s]+)""", re.IGNORECASE)
_PLAIN_CTE = {"", "7bit", "8bit", "binary"}


def header_items(head: bytes) -> list[tuple[str, str]] | None:
    """(name, raw value) pairs of a header block, or None when it holds anything but clean header lines.

    This is what `BytesHeaderParser(policy=compat32)` does (same line splitting, the email package's own
    header grammar `feedparser.headerRE`, `compat32.header_source_parse`), without its line-buffer machinery:
    identical output at half the cost, which matters at 325k messages. Anything unusual (a stray line, a Unix
    'From ' line) returns None and goes through the full parser.
    """
    out: list[tuple[str, str]] = []
    cur: list[str] | None = None
    for line in head.decode("ascii", "surrogateescape").splitlines(True):
        if line[:1] in (" ", "\t"):
            if cur is None:
                return None  # a continuation with nothing to continue
            cur.append(line)
            continue
        if cur is not None:
            out.append(_source_parse(cur))
        if line.startswith("From ") or ":" not in line or not _HEADER_RE.match(line):
            if line.strip():
                return None
            cur = None
            continue
        cur = [line]
    if cur is not None:
        out.append(_source_parse(cur))
    return out


def _split_head(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) at the first empty line; LF and CRLF mail both occur."""
    i = raw.find(b"\n\n")
    j = raw.find(b"\r\n\r\n")
    if j >= 0 and (i < 0 or j < i):
        return raw[: j + 2], raw[j + 4 :]
    if i >= 0:
        return raw[: i + 1], raw[i + 2 :]
    return raw, b""


def _body(raw: bytes, body_raw: bytes, headers: dict[str, str]) -> tuple[str, list[str]]:
    ct_value = headers.get("content-type", "")
    m = _CTYPE.match(ct_value)
    ctype = m.group(1).lower() if m else "text/plain"
    cte = headers.get("content-transfer-encoding", "").strip().lower()
    if (
        ctype.startswith("text/")
        and cte in _PLAIN_CTE
        and "name=" not in ct_value.lower()
        and ("content-disposition" not in headers)
    ):
        cm = _CHARSET.search(ct_value)
        text = decode_bytes(body_raw, cm.group(1) if cm else None)
        return (html_to_text(text) if ctype == "text/html" else text), []
    return extract_body(email.message_from_bytes(raw, policy=compat32))


def content_hash(subject: str, body: str, sender: str) -> str:
    """The duplicate key, ART-E's rule: same subject, body and sender. Whitespace differences do not count."""
    key = "\x00".join((_WS.sub(" ", subject).strip(), " ".join(body.split()), sender.strip().lower()))
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_message_id(value: str) -> str:
    """A Message-ID header's id: decoded, its first token, in the store's one id form (`access.normalise_id`)."""
    v = decode_header_value(value).strip()
    if not v:
        return ""
    if v.startswith("<") and ">" in v:
        v = v[: v.index(">") + 1]
    else:
        v = v.split()[0]
    return normalise_id(v)


def parse_message(
    raw: bytes, min_year: int = DEFAULT_MIN_YEAR, max_year: int = DEFAULT_MAX_YEAR
) -> ParsedMessage:
    """Parses one message. Raises ParseError (the skip reason) only for bytes that are not mail at all."""
    if not raw or not raw.strip():
        raise ParseError("empty message")
    # Headers go through the email package on their own; the body of a plain single-part message (most mail)
    # is then taken as it is, which skips the feed parser's line-by-line walk over it. MIME goes the full way.
    head, body_raw = _split_head(raw)
    items = header_items(head)
    if items is None:
        try:
            items = list(_HEADER_PARSER.parsebytes(head).raw_items())
        except Exception as e:  # compat32 hardly ever raises; if it does the message is unusable
            raise ParseError(f"unparseable: {type(e).__name__}") from e
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        if key in headers:
            if key in ("to", "cc", "bcc"):
                headers[key] += ", " + value
            continue
        headers[key] = value
    if not any(h in headers for h in _MAIL_HEADERS):
        raise ParseError("no mail headers")

    subject = decode_header_value(headers.get("subject"))
    date_raw = decode_header_value(headers.get("date"))
    date, date_ok = parse_date(date_raw, min_year, max_year)

    froms = parse_addresses(headers.get("from", "") or headers.get("sender", ""))
    from_name, from_addr = froms[0] if froms else ("", "")
    if not from_name:
        xf = _x_names(headers.get("x-from"))
        if xf and xf[0]:
            from_name = xf[0]

    participants: list[Participant] = []
    if from_addr:
        participants.append(Participant(from_addr, from_name, "from"))
    seen = {(from_addr, "from")}
    for role, xkey in (("to", "x-to"), ("cc", "x-cc"), ("bcc", "x-bcc")):
        pairs = parse_addresses(headers.get(role, ""))
        xval = headers.get(xkey, "")
        # X-To names line up with To addresses only when the counts agree; mass mail gains nothing from them.
        use_x = (
            0 < len(pairs) <= _MAX_X_NAMES
            and xval.count(",") + 1 == len(pairs)
            and any(not n for n, _ in pairs)
        )
        xnames = _x_names(xval) if use_x else []
        use_x = use_x and len(xnames) == len(pairs)
        for i, (name, addr) in enumerate(pairs):
            if not addr or (addr, role) in seen:
                continue
            seen.add((addr, role))
            if not name and use_x:
                name = xnames[i]
            participants.append(Participant(addr, name, role))

    try:
        body, attachments = _body(raw, body_raw, headers)
    except Exception:  # a MIME tree the stdlib cannot walk: keep its raw text rather than lose the message
        body, attachments = decode_bytes(body_raw), []
    body = body.replace("\r\n", "\n").replace("\x00", "")

    generated = False
    message_id = normalise_message_id(headers.get("message-id", ""))
    if not message_id:
        message_id = f"<{hashlib.sha1(raw).hexdigest()}@{GENERATED_ID_DOMAIN}>"
        generated = True

    return ParsedMessage(
        message_id=message_id,
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        date=date,
        date_raw=date_raw,
        date_ok=date_ok,
        body=body,
        attachments=attachments,
        participants=participants,
        content_hash=content_hash(subject, body, from_addr),
        generated_id=generated,
    )
