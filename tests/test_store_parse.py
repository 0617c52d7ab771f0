"""Parsing single messages: real Enron mail, and real mail altered into the shapes real mail also comes in."""

from __future__ import annotations

import base64
import email
from email.policy import compat32

import pytest

from inboxrl.store.parse import (
    ParseError,
    content_hash,
    decode_header_value,
    html_to_text,
    parse_date,
    parse_message,
)
from store_helpers import message_id, real_messages, with_header


@pytest.fixture(scope="module")
def msgs(kaminski_dir):
    return real_messages(kaminski_dir, "universities")


def test_real_messages_parse_with_headers_and_recipients(msgs):
    for raw in msgs[:200]:
        m = parse_message(raw)
        hdr = email.message_from_bytes(raw, policy=compat32)
        assert m.message_id == hdr["Message-ID"].strip()
        assert m.from_addr == hdr["From"].strip().lower()
        assert m.date and m.date.endswith("Z") and m.date_ok
        assert m.body.strip()
        assert {p.role for p in m.participants} >= {"from"}
        assert not m.generated_id


def test_enron_x_from_gives_the_sender_name(msgs):
    names = [parse_message(r).from_name for r in msgs[:100]]
    assert sum(bool(n) for n in names) > 80
    assert all("@" not in n for n in names)


def test_rfc2047_subject_and_names_decode():
    assert decode_header_value("=?utf-8?q?Caf=C3=A9_meeting?=") == "Café meeting"
    assert decode_header_value("=?ISO-8859-1?B?SmV3ZWxyeQ==?= =?iso-8859-1?q?_b=FCro?=") == "Jewelry büro"
    assert decode_header_value("Re:\n\t=?koi8-r?b?8NLJ18XU?=") == "Re: Привет"
    # an unknown charset falls back instead of raising
    assert decode_header_value("=?x-nonsense-9?q?abc=E9?=") == "abcé"
    assert decode_header_value("=?utf-8?b?not*base64?=") != ""


def test_raw_8bit_header_bytes_and_body_charsets(msgs):
    raw = with_header(msgs[0], "Subject", "Réunion à Zürich".encode("cp1252"))
    raw = raw.replace(
        b"Content-Type: text/plain; charset=us-ascii", b"Content-Type: text/plain; charset=bogus-42"
    )
    raw = raw + "\nSigned, Müller — €5".encode("cp1252")
    m = parse_message(raw)
    assert m.subject == "Réunion à Zürich"
    assert m.body.endswith("Signed, Müller — €5")
    utf = with_header(msgs[1], "Subject", "日本語の件名".encode())
    assert parse_message(utf).subject == "日本語の件名"


def test_html_only_becomes_text_without_script_or_style():
    html = (
        "<html><head><style>p{color:red}</style><script>alert('x')</script></head>"
        "<body><p>Dear Vince,</p><p>The <b>seminar</b> is on Friday&nbsp;at 3&amp;4.</p></body></html>"
    )
    text = html_to_text(html)
    assert text.splitlines()[0] == "Dear Vince,"
    assert "The seminar is on Friday at 3&4." in text  # entities decoded, &nbsp; is a space
    assert "alert" not in text and "color" not in text
    raw = b"Message-ID: <h@t>\nFrom: a@b.com\nContent-Type: text/html; charset=iso-8859-1\n\n" + html.replace(
        "Vince", "Ren\xe9"
    ).encode("latin-1")
    m = parse_message(raw)
    assert m.body.startswith("Dear Ren\xe9,") and "<p>" not in m.body and "alert" not in m.body


def test_multipart_prefers_plain_and_keeps_only_attachment_names(msgs):
    base = email.message_from_bytes(msgs[2], policy=compat32)
    plain = base.get_payload()
    pdf = base64.b64encode(b"%PDF-1.4 binary \x00\x01 content").decode()
    mime = (
        "Message-ID: <mime-1@test>\nDate: Mon, 4 Dec 2000 09:00:00 -0600\nFrom: a@enron.com\n"
        "To: b@enron.com\n"
        "Subject: report\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=XX\n\n--XX\n"
        "Content-Type: multipart/alternative; boundary=YY\n\n--YY\nContent-Type: text/plain; charset=utf-8\n"
        f"Content-Transfer-Encoding: quoted-printable\n\n{plain[:300]}=E2=82=AC\n--YY\n"
        "Content-Type: text/html\n\n<p>HTML VERSION</p>\n--YY--\n--XX\n"
        'Content-Type: application/pdf; name="=?utf-8?q?Q4_r=C3=A9sum=C3=A9.pdf?="\n'
        f"Content-Disposition: attachment\nContent-Transfer-Encoding: base64\n\n{pdf}\n--XX--\n"
    ).encode()
    m = parse_message(mime)
    assert m.attachments == ["Q4 résumé.pdf"]
    assert "HTML VERSION" not in m.body and "%PDF" not in m.body
    assert m.body.rstrip().endswith("€")
    html_only = mime.replace(
        b"Content-Type: text/plain; charset=utf-8", b"Content-Type: image/png; name=a.png"
    )
    assert "HTML VERSION" in parse_message(html_only).body


def test_dates_normalise_to_utc_and_bad_ones_are_flagged():
    assert parse_date("Fri, 25 Jan 2002 11:22:16 -0800 (PST)") == ("2002-01-25T19:22:16Z", True)
    assert parse_date("Mon, 31 Dec 1979 16:00:00 -0800 (PST)") == (
        "1980-01-01T00:00:00Z",
        False,
    )  # kept, flagged
    assert parse_date("Sat, 1 Jan 2044 00:00:00 +0000") == ("2044-01-01T00:00:00Z", False)
    assert parse_date("Sat, 1 Jan 2044 00:00:00 +0000", max_year=2050) == ("2044-01-01T00:00:00Z", True)
    assert parse_date("yesterday-ish") == (None, False)
    assert parse_date("Mon, 45 Foo 2001 99:99:99 +0000") == (None, False)
    assert parse_date("") == (None, False)


def test_message_with_bad_date_is_kept_flagged(msgs):
    m = parse_message(with_header(msgs[3], "Date", b"not a date at all"))
    assert m.date is None and not m.date_ok and m.date_raw == "not a date at all"


def test_missing_message_id_gets_a_stable_content_id(msgs):
    raw = with_header(msgs[4], "Message-ID", None)
    a, b = parse_message(raw), parse_message(raw)
    assert a.generated_id and a.message_id == b.message_id
    assert a.message_id.startswith("<") and a.message_id.endswith("@inboxrl.generated>")
    assert parse_message(with_header(msgs[5], "Message-ID", None)).message_id != a.message_id


def test_not_mail_is_refused_with_a_reason():
    with pytest.raises(ParseError, match="empty"):
        parse_message(b"\n\n  \n")
    with pytest.raises(ParseError, match="no mail headers"):
        parse_message(b"just some text\nwithout any headers\n")
    with pytest.raises(ParseError, match="no mail headers"):
        parse_message(bytes(range(256)) * 4)


def test_missing_from_and_date_is_kept(msgs):
    raw = with_header(with_header(msgs[6], "From", None), "Date", None)
    m = parse_message(raw)
    assert m.from_addr == "" and m.date is None and m.body.strip()
    assert m.message_id == message_id(msgs[6])


def test_content_hash_is_the_art_e_rule():
    h = content_hash("Re: budget", "Numbers attached.\n", "A@Enron.com")
    assert h == content_hash("Re:  budget ", "Numbers   attached.", "a@enron.com")  # whitespace/case only
    assert h != content_hash("Re: budget", "Numbers attached!", "a@enron.com")
    assert h != content_hash("Re: budget", "Numbers attached.", "b@enron.com")
    assert h != content_hash("Fw: budget", "Numbers attached.", "a@enron.com")


def test_quoted_names_with_commas_and_duplicate_recipients():
    raw = (
        b'Message-ID: <x@y>\nFrom: "Kaminski, Vince" <Vince.Kaminski@ENRON.com>\n'
        b'To: "Crenshaw, Shirley" <shirley.crenshaw@enron.com>, a@b.com, a@b.com\n'
        b"Cc: c@d.com\nCc: e@f.com\n\nhi\n"
    )
    m = parse_message(raw)
    assert (m.from_addr, m.from_name) == ("vince.kaminski@enron.com", "Kaminski, Vince")
    got = [(p.role, p.address, p.name) for p in m.participants]
    assert got == [
        ("from", "vince.kaminski@enron.com", "Kaminski, Vince"),
        ("to", "shirley.crenshaw@enron.com", "Crenshaw, Shirley"),
        ("to", "a@b.com", ""),
        ("cc", "c@d.com", ""),
        ("cc", "e@f.com", ""),
    ]


def test_header_fast_path_equals_the_stdlib_header_parser(kaminski_dir):
    """header_items must give exactly what BytesHeaderParser(policy=compat32) gives, or step aside (None)."""
    from email.parser import BytesHeaderParser

    from inboxrl.store.parse import _split_head, header_items

    hp = BytesHeaderParser(policy=compat32)
    folders = ("inbox", "sent_items", "resumes")
    heads = [_split_head(r)[0] for f in folders for r in real_messages(kaminski_dir, f)]
    heads += [
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\nTo: a@b.com,\r\n\tc@d.com\r\n\r\n",
        b"X-Odd:\n  \nSubject: \xff\xfe raw bytes\n",
        b"Subject: ok\nthis is not a header\nFrom: a@b\n",
        b"From MAILER-DAEMON Mon Apr 18 14:19:09 2022\nSubject: x\n",
        b" leading continuation\nSubject: x\n",
    ]
    used = 0
    for h in heads:
        fast = header_items(h)
        if fast is not None:
            used += 1
            assert fast == list(hp.parsebytes(h).raw_items()), h[:200]
    assert used >= len(heads) - 3
