# netsec.mime unit tests: run by pytest on CPython and by run.py on MicroPython.
import binascii
import os

from check import raises
from netsec import mime, smtp


def _message(**kwargs):
    fields = {"sender": "Device <device@example.com>", "to": "ops@example.com",
              "subject": "Alarm", "text": "Temperature high.\n"}
    fields.update(kwargs)
    return mime.Message(**fields)


def _raw(message):
    return b"".join(message.render())


def _split(raw):
    """(header text unfolded into a list of 'Name: value', body bytes)."""
    end = raw.find(b"\r\n\r\n")
    head = raw[:end].decode().replace("\r\n ", " ").split("\r\n")
    return head, raw[end + 4:]


def _header(raw, name):
    values = [h[len(name) + 2:] for h in _split(raw)[0] if h.startswith(name + ": ")]
    return values[0] if len(values) == 1 else values


def _decode_words(value):
    # Minimal RFC 2047 B decoder for our own output: words separated by single spaces.
    if not value.startswith("=?utf-8?B?"):
        return value
    raw = b""
    for word in value.split(" "):
        assert word.startswith("=?utf-8?B?") and word.endswith("?=")
        assert len(word) <= 75
        raw += binascii.a2b_base64(word[10:-2])
    return raw.decode()


def _parts(raw, boundary):
    """Bodies of the parts of a multipart body, as (headers, content) with exact content."""
    delimiter = b"\r\n--" + boundary.encode()
    body = b"\r\n" + raw  # the first delimiter has no CRLF of its own before it
    pieces = body.split(delimiter)
    assert pieces[-1] in (b"--\r\n", b"--\r\n\r\n"), pieces[-1][:40]
    out = []
    for piece in pieces[1:-1]:
        assert piece.startswith(b"\r\n")
        end = piece.find(b"\r\n\r\n")
        out.append((piece[2:end].decode(), piece[end + 4:]))
    return out


def _qp_decode(data):
    lines = data.split(b"\r\n")
    out = b""
    for i, line in enumerate(lines):
        soft = line.endswith(b"=")
        if soft:
            line = line[:-1]
        j = 0
        while j < len(line):
            if line[j:j + 1] == b"=":
                out += binascii.unhexlify(line[j + 1:j + 3])
                j += 3
            else:
                out += line[j:j + 1]
                j += 1
        if not soft and i < len(lines) - 1:
            out += b"\r\n"
    return out


def _percent_decoded(text):
    out = b""
    i = 0
    while i < len(text):
        if text[i] == "%":
            out += binascii.unhexlify(text[i + 1:i + 3])
            i += 3
        else:
            out += text[i].encode()
            i += 1
    return out.decode()


def _scratch(name):
    # /tmp where there is one (CPython, unix image); the working directory on boards.
    try:
        os.stat("/tmp")
        return "/tmp/" + name
    except OSError:
        return name


def test_headers():
    message = _message(to=["a@example.com", "Bee Sea <b@example.com>"], cc="c@example.com",
                       reply_to="Help Desk <help@example.com>")
    raw = _raw(message)
    assert _header(raw, "From") == "Device <device@example.com>"
    assert _header(raw, "To") == "a@example.com, Bee Sea <b@example.com>"
    assert _header(raw, "Cc") == "c@example.com"
    assert _header(raw, "Reply-To") == "Help Desk <help@example.com>"
    assert _header(raw, "Subject") == "Alarm"
    assert _header(raw, "MIME-Version") == "1.0"
    assert _header(raw, "Message-ID") == message.message_id
    date = _header(raw, "Date")
    assert date.endswith(" +0000") and date[3:5] == ", ", date


def test_bcc_is_an_envelope_recipient_but_never_a_header():
    message = _message(to="a@example.com", bcc=["secret@example.com", "a@example.com"])
    raw = _raw(message)
    assert b"secret" not in raw and b"Bcc" not in raw
    assert message.recipients() == ["a@example.com", "secret@example.com"]


def test_bcc_only_message_has_no_to_header():
    raw = _raw(_message(to=(), bcc="hidden@example.com"))
    assert b"\r\nTo:" not in raw and b"hidden" not in raw


def test_no_recipients_is_an_error():
    assert "no recipients" in str(raises(ValueError, _message, to=()))


def test_display_names_are_quoted_or_encoded():
    message = _message(to=['"Doe, John" <j@example.com>', "Zoë <z@example.com>",
                           'Say "hi" <h@example.com>'])
    to = _header(_raw(message), "To")
    assert to.startswith('"Doe, John" <j@example.com>, =?utf-8?B?'), to
    assert '"Say \\"hi\\"" <h@example.com>' in to
    # A name given as a quoted-string is that string's content, escapes undone (RFC 5322 3.2.4).
    quoted = _header(_raw(_message(to='"Say \\"hi\\" \\\\o/" <h@example.com>')), "To")
    assert quoted == '"Say \\"hi\\" \\\\o/" <h@example.com>', quoted
    encoded = to.split(">, ")[1]
    assert _decode_words(encoded[:encoded.find(" <")]) == "Zoë"


def test_header_injection_is_refused_everywhere():
    cases = ({"sender": "d@example.com\r\nBcc: x@example.com"},
             {"to": "a@example.com\nBcc: x@example.com"},
             {"to": ["ok@example.com", "Name\r\n <a@example.com>"]},
             {"cc": "c@example.com\r"},
             {"bcc": "b@example.com\n"},
             {"reply_to": "r@example.com\r\nX: y"},
             {"subject": "Hi\r\nBcc: victim@example.com"},
             {"subject": "Hi\rthere"})
    for fields in cases:
        err = raises(ValueError, _message, **fields)
        assert "header injection" in str(err), (fields, err)
    message = _message()
    assert "header injection" in str(raises(ValueError, message.attach, "a\r\n.txt", b"x"))
    assert "header injection" in str(raises(ValueError, message.attach, "a.txt", b"x",
                                            "text/plain\r\nX-Evil: 1"))


def test_other_control_characters_are_refused():
    err = raises(ValueError, _message, subject="bell\x07")
    assert "control character" in str(err)


def test_non_ascii_subject_uses_encoded_words():
    subject = "Température élevée: 85 °C ✓ " * 3
    raw = _raw(_message(subject=subject))
    value = _header(raw, "Subject")
    assert _decode_words(value) == subject
    assert max(len(line) for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")) <= 78


def test_ascii_subject_that_looks_encoded_is_encoded():
    subject = "literal =?utf-8?B?eA==?= text"
    assert _decode_words(_header(_raw(_message(subject=subject)), "Subject")) == subject


def test_long_ascii_subject_is_folded_at_spaces():
    subject = " ".join(["word%d" % i for i in range(60)])
    raw = _raw(_message(subject=subject))
    head = raw[:raw.find(b"\r\n\r\n")]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert b"\r\n word" in head
    assert _header(raw, "Subject") == subject


def test_empty_subject():
    assert b"\r\nSubject:\r\n" in _raw(_message(subject=""))


def test_message_id_is_stable_per_message_and_unique():
    first, second = _message(), _message()
    assert first.message_id != second.message_id
    assert first.message_id.startswith("<") and first.message_id.endswith("@example.com>")
    assert _raw(first) == _raw(first)


def test_render_is_deterministic_with_attachments():
    path = _scratch("netsec_mime_det.bin")
    with open(path, "wb") as f:
        f.write(b"\x00\xff" * 3000)
    try:
        message = _message(html="<b>hi</b>")
        message.attach("a.bin", b"abc")
        message.attach_file(path)
        assert _raw(message) == _raw(message)
    finally:
        os.remove(path)


def test_text_only_is_a_single_7bit_part():
    raw = _raw(_message(text="line one\nline two\n"))
    assert _header(raw, "Content-Type") == "text/plain; charset=utf-8"
    assert _header(raw, "Content-Transfer-Encoding") == "7bit"
    assert _split(raw)[1] == b"line one\r\nline two\r\n"  # exactly the text, no line added


def test_html_only():
    raw = _raw(_message(text=None, html="<p>x</p>\n"))
    assert _header(raw, "Content-Type") == "text/html; charset=utf-8"
    assert _split(raw)[1] == b"<p>x</p>\r\n"


def test_single_part_bodies_are_exactly_the_text():
    # Quoted-printable too: the encoder adds no line break of its own.
    for text in ("hello\n", "hello", "Zoë\n", "Zoë", "", "\n\n"):
        body = _split(_raw(_message(text=text)))[1]
        encoded = "quoted-printable" in _header(_raw(_message(text=text)),
                                                "Content-Transfer-Encoding")
        assert (_qp_decode(body) if encoded else body) == text.replace("\n", "\r\n").encode(), text


def test_no_body_at_all_is_an_empty_text():
    raw = _raw(_message(text=None))
    assert _header(raw, "Content-Type") == "text/plain; charset=utf-8"


def test_text_and_html_are_alternatives_with_exact_content():
    message = _message(text="plain\nbody", html="<p>html</p>\n")
    raw = _raw(message)
    boundary = message.boundary + "a"
    assert _header(raw, "Content-Type") == 'multipart/alternative; boundary="%s"' % boundary
    parts = _parts(_split(raw)[1], boundary)
    assert len(parts) == 2
    assert "text/plain" in parts[0][0] and parts[0][1] == b"plain\r\nbody"
    assert "text/html" in parts[1][0] and parts[1][1] == b"<p>html</p>\r\n"


def test_newlines_are_normalised_to_crlf():
    message = _message(text="a\rb\nc\r\nd", html="x")
    parts = _parts(_split(_raw(message))[1], message.boundary + "a")
    assert parts[0][1] == b"a\r\nb\r\nc\r\nd"


def test_non_ascii_and_long_lines_use_quoted_printable():
    text = "Zoë ✓ = tab\tend \n" + "x" * 1500 + "\n.dot\n"
    message = _message(text=text, html="<i>x</i>")
    parts = _parts(_split(_raw(message))[1], message.boundary + "a")
    assert "quoted-printable" in parts[0][0]
    encoded = parts[0][1]
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    assert b" \r\n" not in encoded and b"\t\r\n" not in encoded
    assert _qp_decode(encoded) == text.replace("\n", "\r\n").encode()


def test_text_containing_the_boundary_is_quoted_printable():
    message = _message(html="<p>x</p>")
    message.text = "sneaky\n--" + message.boundary + "a--\n"
    raw = _raw(message)
    parts = _parts(_split(raw)[1], message.boundary + "a")
    assert len(parts) == 2 and "quoted-printable" in parts[0][0]


def _attachment(message, index):
    raw = _raw(message)
    parts = _parts(_split(raw)[1], message.boundary + "m")
    headers, body = parts[index]
    for line in body.split(b"\r\n"):
        assert len(line) <= 76
    return headers, binascii.a2b_base64(body.replace(b"\r\n", b""))


def test_attachment_from_bytes():
    data = bytes(range(256)) * 7
    message = _message()
    message.attach("data.bin", data)
    headers, content = _attachment(message, 1)
    assert content == data
    assert "Content-Type: application/octet-stream; name=\"data.bin\"" in headers
    assert "Content-Disposition: attachment; filename=\"data.bin\"" in headers
    assert "Content-Transfer-Encoding: base64" in headers


def _unfolded_headers(headers):
    return headers.replace("\r\n ", " ")


def test_attachment_content_types():
    message = _message()
    message.attach("report.CSV", b"a,b\n")
    message.attach("x", b"{}", "Application/JSON")
    message.attach("notes.txt", b"caf\xc3\xa9", "text/plain; charset=utf-8")
    message.attach("old.txt", b"caf\xe9", 'Text/Plain; Charset="iso-8859-1"; format=flowed')
    # Text attachments say their charset: UTF-8 unless the caller said otherwise.
    assert "Content-Type: text/csv; charset=utf-8; name=" in _attachment(message, 1)[0]
    assert "Content-Type: application/json; name=" in _attachment(message, 2)[0]
    assert ("Content-Type: text/plain; charset=utf-8; name=" in
            _unfolded_headers(_attachment(message, 3)[0]))
    assert ("Content-Type: text/plain; charset=iso-8859-1; format=flowed; name=" in
            _unfolded_headers(_attachment(message, 4)[0]))
    for bad in ("text", "text/", "/plain", "a/b/c", "tëxt/plain", "text/plain; x",
                "text/plain; =y", 'text/plain; x="open', "text/plain; x=a b",
                "text/plain; x=é"):
        err = raises(ValueError, message.attach, "y", b"", bad)
        assert "type/subtype" in str(err) or "name=value" in str(err), bad
    err = raises(ValueError, message.attach, "y", b"", "text/plain; name=z")
    assert "leave out name=" in str(err)
    # RFC 2231 forms and repeats would override the attachment's own name or charset at the
    # receiver (a Content-Type name*= wins over name=, RFC 2231 4.1).
    for ambiguous, said in (("text/plain; name*=utf-8''invoice.pdf.exe", "plain name=value"),
                            ("text/plain; NAME*0=evil.exe", "plain name=value"),
                            ("application/pdf; filename*=utf-8''x.exe", "plain name=value"),
                            ("text/plain; charset*=utf-8''iso-8859-1", "plain name=value"),
                            ("text/plain; charset=utf-8; CHARSET=iso-8859-1", "given twice")):
        err = raises(ValueError, message.attach, "y", b"", ambiguous)
        assert said in str(err), (ambiguous, err)
    # Attachments are base64, which a multipart or message entity may not be (RFC 2045 6.4):
    # a receiver would look for parts, or headers, inside the base64.
    for composite in ("multipart/mixed", 'Multipart/Alternative; boundary="=_x"',
                      "message/rfc822", "message/partial; id=1"):
        err = raises(ValueError, message.attach, "y", b"", composite)
        assert "may not be base64-encoded" in str(err), composite
    message.attach("mail.eml", b"Subject: x\r\n\r\nhi", "message/global")


def test_empty_attachment():
    message = _message()
    message.attach("empty.txt", b"")
    assert _attachment(message, 1)[1] == b""


def test_attachment_names():
    message = _message()
    message.attach("résumé 2024.pdf", b"%PDF")
    message.attach('odd"name.txt', b"")
    headers = _attachment(message, 1)[0]
    assert "filename*=utf-8''r%C3%A9sum%C3%A9%202024.pdf" in headers
    assert 'filename="odd\\"name.txt"' in _attachment(message, 2)[0]
    # 200 bytes of name: RFC 2231 continuations, every header line within 78.
    long_name = "ü" * 98 + ".txt"
    message.attach(long_name, b"x")
    headers = _attachment(message, 3)[0]
    assert max(len(line) for line in headers.split("\r\n")) <= 78
    pieces = [w.split("=", 1)[1].rstrip(";") for w in _unfolded_headers(headers).split()
              if w.startswith("filename*")]
    assert len(pieces) > 1 and pieces[0].startswith("utf-8''")
    assert _percent_decoded("".join(pieces)[len("utf-8''"):]) == long_name
    assert "1 to 200" in str(raises(ValueError, message.attach, "", b""))
    assert "must be bytes" in str(raises(ValueError, message.attach, "a", "text"))


def test_attachment_from_file_is_streamed_in_57_byte_groups():
    path = _scratch("netsec_mime_file.bin")
    data = bytes(range(7, 256, 7)) * 140  # 5040 bytes, not a multiple of 57
    with open(path, "wb") as f:
        f.write(data)
    try:
        message = _message(text=None)
        message.attach_file(path)
        raw = _raw(message)
        headers, content = _attachment(message, 0)
        assert content == data
        assert 'filename="netsec_mime_file.bin"' in headers
        # The file is read again on every render: chunks are bounded, not the whole file.
        assert max(len(c) for c in message.render()) < 2000
        assert len(raw) > 6000
    finally:
        os.remove(path)


def test_attach_missing_file_is_a_clear_error():
    err = raises(ValueError, _message().attach_file, "/no/such/file.log")
    assert "not found" in str(err) and "/no/such/file.log" in str(err)


def test_rendered_message_is_valid_smtp_data():
    message = _message(to=["x@example.com"] * 30, subject="é" * 200, text=".\n" + "y" * 3000,
                       html="<p>" + "z " * 2000 + "</p>")
    message.attach("blob", bytes(range(256)) * 20)
    tail = b""
    for chunk in smtp.frame_data(message.render()):  # raises on any bare CR/LF, long line
        assert max(chunk) < 128, "not 7-bit"
        tail = (tail + chunk)[-5:]
    assert tail == b"\r\n.\r\n"


def _head_lines(message):
    raw = _raw(message)
    return raw[:raw.find(b"\r\n\r\n")].split(b"\r\n")


def test_long_words_in_names_are_encoded_not_sent_as_overlong_lines():
    # A display name with a 1000-character word used to fail on the wire, after MAIL, RCPT and
    # DATA; now every header line is within RFC 5322's 78 (the only longer words are addresses).
    word = "x" * 1000
    message = _message(sender=word + " <device@example.com>",
                       to=['"%s, Ops" <ops@example.com>' % word, "Zoë %s <z@example.com>" % word],
                       reply_to="a@example.com", subject="s" * 200)
    assert max(len(line) for line in _head_lines(message)) <= 78
    from_ = _header(_raw(message), "From")
    assert _decode_words(from_[:from_.find(" <")]) == word
    assert _decode_words(_header(_raw(message), "Subject")) == "s" * 200
    message.attach("a" * 199 + ".", b"", "text/plain; format=" + "f" * 60)
    assert max(len(line) for line in _raw(message).split(b"\r\n")) <= 78
    b"".join(smtp.frame_data(message.render()))


def test_format_date():
    assert mime.format_date((2025, 11, 25, 9, 5, 3, 1, 329)) == "Tue, 25 Nov 2025 09:05:03 +0000"
