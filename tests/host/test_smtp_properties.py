"""Property tests for netsec.smtp on CPython: DATA framing and reply parsing, any input and
any split."""
from hypothesis import given, settings, strategies as st

import pytest

from netsec import smtp

# A message line: any bytes but CR and LF, up to the SMTP limit; dots are made common.
line_bytes = st.binary(max_size=smtp.MAX_LINE).filter(lambda b: b"\r" not in b and b"\n" not in b)
dotty_line = st.one_of(line_bytes, line_bytes.map(lambda b: b"." + b[:smtp.MAX_LINE - 1]),
                       st.sampled_from([b"", b".", b"..", b". "]))


def split_at(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    pieces, start = [], 0
    for cut in cuts:
        pieces.append(data[start:cut])
        start = cut
    pieces.append(data[start:])
    return pieces


def receive(framed):
    """What a server does (RFC 5321 4.5.2): split lines, stop at '.', drop one leading dot."""
    assert framed.endswith(b"\r\n.\r\n") or framed == b".\r\n"
    lines = framed.split(b"\r\n")
    assert lines[-1] == b""
    end = lines.index(b".")
    assert end == len(lines) - 2, "a lone '.' line before the end would truncate the message"
    return b"".join(line[1:] + b"\r\n" if line.startswith(b".") else line + b"\r\n"
                    for line in lines[:end])


def assert_crlf_only(data):
    assert data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")


@given(st.lists(dotty_line, max_size=30), st.lists(st.integers(min_value=0), max_size=8))
@settings(max_examples=300, deadline=None)
def test_dot_stuffing_round_trip_in_any_split(lines, cuts):
    message = b"".join(line + b"\r\n" for line in lines)
    framed = b"".join(smtp.frame_data(split_at(message, cuts)))
    assert_crlf_only(framed)
    assert receive(framed) == message
    assert framed == b"".join(smtp.frame_data([message]))


@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=5))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_are_framed_safely_or_refused(data, cuts):
    try:
        framed = b"".join(smtp.frame_data(split_at(data, cuts)))
    except smtp.SMTPError as e:
        assert "bare" in str(e) or "998" in str(e)
        lines = data.replace(b"\r\n", b"\x00").split(b"\x00")
        bad_line_ending = b"\r" in data.replace(b"\r\n", b"") or b"\n" in data.replace(b"\r\n", b"")
        assert bad_line_ending or max(len(line) for line in lines) > smtp.MAX_LINE
        return
    assert_crlf_only(framed)
    expected = data if data.endswith(b"\r\n") or not data else data + b"\r\n"
    assert receive(framed) == expected


reply_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@given(st.lists(st.tuples(st.integers(min_value=200, max_value=599),
                          st.lists(reply_text, min_size=1, max_size=6)), min_size=1, max_size=6),
       st.lists(st.integers(min_value=0), max_size=10), st.booleans())
@settings(max_examples=300, deadline=None)
def test_replies_parse_identically_in_any_split(replies, cuts, bare_lf):
    eol = b"\n" if bare_lf else b"\r\n"
    wire = b""
    for code, lines in replies:
        for i, text in enumerate(lines):
            separator = b" " if i == len(lines) - 1 else b"-"
            wire += b"%d" % code + separator + text.encode() + eol
    parser = smtp.ReplyParser()
    parsed = []
    for piece in split_at(wire, cuts):
        parsed += parser.feed(piece)
    assert not parser.pending()
    assert [(r.code, r.lines) for r in parsed] == replies


@settings(deadline=None)  # timing is not what these test: CI shares 2 cores
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=5))
def test_reply_parser_never_fails_with_anything_but_smtp_error(data, cuts):
    parser = smtp.ReplyParser()
    try:
        for piece in split_at(data, cuts):
            for reply in parser.feed(piece):
                assert 200 <= reply.code <= 599
                assert all(32 <= ord(c) <= 126 for line in reply.lines for c in line)
    except smtp.SMTPError:
        pass


@settings(deadline=None)  # timing is not what these test: CI shares 2 cores
@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_crlf_in_any_address_is_refused(left, right):
    for eol in ("\r", "\n", "\r\n"):
        with pytest.raises(ValueError, match="CR or LF"):
            smtp.rcpt_to(left + eol + right)
