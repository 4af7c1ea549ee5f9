# netsec.smtp unit tests: run by pytest on CPython and by run.py on MicroPython.
import binascii

from check import raises
from netsec import smtp

EHLO_REPLY = (b"250-mail.example.com greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
              b"250-STARTTLS\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-8BITMIME\r\n"
              b"250 SMTPUTF8\r\n")


def _one_reply(data):
    parser = smtp.ReplyParser()
    replies = parser.feed(data)
    assert len(replies) == 1, replies
    assert not parser.pending()
    return replies[0]


def test_single_line_reply():
    reply = _one_reply(b"220 mail.example.com ESMTP ready\r\n")
    assert reply.code == 220
    assert reply.lines == ["mail.example.com ESMTP ready"]


def test_reply_with_code_only():
    reply = _one_reply(b"250\r\n")
    assert reply.code == 250 and reply.lines == [""]


def test_multiline_reply_split_at_every_position():
    whole = smtp.ReplyParser().feed(EHLO_REPLY)[0]
    for cut in range(1, len(EHLO_REPLY)):
        parser = smtp.ReplyParser()
        first = parser.feed(EHLO_REPLY[:cut])
        assert first == []
        assert parser.pending()
        second = parser.feed(EHLO_REPLY[cut:])
        assert len(second) == 1
        assert second[0].code == whole.code and second[0].lines == whole.lines
        assert not parser.pending()


def test_multiline_reply_one_byte_at_a_time():
    parser = smtp.ReplyParser()
    replies = []
    for i in range(len(EHLO_REPLY)):
        replies += parser.feed(EHLO_REPLY[i:i + 1])
    assert len(replies) == 1 and len(replies[0].lines) == 7


def test_several_replies_in_one_read():
    replies = smtp.ReplyParser().feed(b"250 ok\r\n251 forwarded\r\n354 go ahead\r\n")
    assert [r.code for r in replies] == [250, 251, 354]


def test_reply_lines_may_end_with_bare_lf():
    assert _one_reply(b"220-a\n220 b\n").lines == ["a", "b"]


def test_pending_sees_bytes_after_a_complete_reply():
    parser = smtp.ReplyParser()
    replies = parser.feed(b"220 Ready to start TLS\r\n250 injected")
    assert len(replies) == 1 and parser.pending()


def test_reply_text_is_made_printable():
    reply = _one_reply(b"550 bad \x1b[31mred\xff\r\n")
    assert reply.lines == ["bad ?[31mred?"]


def test_malformed_replies_are_refused():
    for bad in (b"hello\r\n", b"25\r\n", b"250x\r\n", b"650 no\r\n", b"150 no\r\n",
                b"250-a\r\n251 b\r\n"):
        err = raises(smtp.SMTPError, smtp.ReplyParser().feed, bad)
        assert "reply" in str(err), err


def test_overlong_reply_line_is_refused():
    parser = smtp.ReplyParser()
    err = raises(smtp.SMTPError, parser.feed, b"250 " + b"x" * 3000)
    assert "longer than" in str(err)


def test_too_many_reply_lines_are_refused():
    raises(smtp.SMTPError, smtp.ReplyParser().feed, b"250-x\r\n" * 2000)


def test_a_reply_is_bounded_in_bytes_not_only_per_line():
    # 100 lines of 2000 bytes, each line within its own limit: 200 KB held for one reply would
    # take the board's whole heap, from the HTTPS server too.
    parser = smtp.ReplyParser()
    line = b"250-" + b"x" * 2000 + b"\r\n"
    err = raises(smtp.SMTPError, lambda: [parser.feed(line) for _ in range(100)])
    assert "longer than %d bytes" % smtp.MAX_REPLY_BYTES in str(err), err
    # The bound is per reply: many ordinary replies in a row are fine.
    parser = smtp.ReplyParser()
    replies = []
    for _ in range(20):
        replies += parser.feed(b"250-" + b"y" * 1000 + b"\r\n250 ok\r\n")
    assert len(replies) == 20


def test_capabilities():
    caps = smtp.Capabilities(smtp.ReplyParser().feed(EHLO_REPLY)[0])
    assert caps.starttls
    assert caps.auth == ["PLAIN", "LOGIN", "CRAM-MD5"]
    assert caps.size == 10240000
    assert caps.has("8BITMIME") and caps.has("8bitmime")
    assert caps.has("PIPELINING") and not caps.has("CHUNKING")


def test_capabilities_old_style_auth_and_bare_size():
    reply = _one_reply(b"250-x\r\n250-AUTH=LOGIN PLAIN\r\n250-auth login\r\n250 SIZE\r\n")
    caps = smtp.Capabilities(reply)
    assert caps.auth == ["LOGIN", "PLAIN", "LOGIN"]
    assert caps.size == 0
    assert not caps.starttls


def test_capabilities_absent():
    caps = smtp.Capabilities(_one_reply(b"250 mail.example.com\r\n"))
    assert caps.size is None and caps.auth == [] and not caps.starttls


def test_capabilities_from_an_error_reply_raise():
    err = raises(smtp.SMTPReplyError, smtp.Capabilities, _one_reply(b"502 no EHLO\r\n"))
    assert err.code == 502 and err.permanent and "EHLO" in str(err)


def test_command_builders():
    assert smtp.ehlo("device.example.com") == b"EHLO device.example.com\r\n"
    assert smtp.ehlo("[192.0.2.7]") == b"EHLO [192.0.2.7]\r\n"
    assert smtp.mail_from("a@example.com") == b"MAIL FROM:<a@example.com>\r\n"
    assert smtp.mail_from("a@example.com", size=1234) == b"MAIL FROM:<a@example.com> SIZE=1234\r\n"
    assert smtp.rcpt_to("b.c+d@mail.example.com") == b"RCPT TO:<b.c+d@mail.example.com>\r\n"
    assert smtp.STARTTLS == b"STARTTLS\r\n" and smtp.DATA == b"DATA\r\n"


def test_command_injection_is_refused():
    err = raises(ValueError, smtp.rcpt_to, "a@example.com>\r\nRCPT TO:<evil@example.com")
    assert "CR or LF" in str(err)
    raises(ValueError, smtp.mail_from, "a@example.com\n")
    raises(ValueError, smtp.ehlo, "host\r\nMAIL FROM:<x@y>")


def test_bad_addresses_are_refused_with_the_reason():
    cases = (("", "user@domain"), ("nobody", "user@domain"), ("@example.com", "user@domain"),
             ("a@", "user@domain"), ("a b@example.com", "spaces"), ("a<b@example.com", "'<'"),
             ("zoë@example.com", "SMTPUTF8"), ("a@exa_mple.com", "host name"),
             ("x" * 65 + "@example.com", "too long"), ("a@b@example.com", "'@'"),
             ("a@[]", "address literal"), ("a@[[x]]", "address literal"))
    for address, reason in cases:
        err = raises(ValueError, smtp.rcpt_to, address)
        assert reason in str(err), (address, str(err))
    assert "must be a str" in str(raises(ValueError, smtp.rcpt_to, b"a@example.com"))
    assert smtp.rcpt_to("a@[192.0.2.1]") == b"RCPT TO:<a@[192.0.2.1]>\r\n"


def test_auth_plain():
    auth = smtp.Auth("PLAIN", "user", "pass word")
    first = auth.start()
    assert first == b"AUTH PLAIN " + binascii.b2a_base64(b"\x00user\x00pass word")[:-1] + b"\r\n"
    assert auth.respond(_one_reply(b"235 2.7.0 Authentication successful\r\n")) is None


def test_auth_plain_refuses_nul():
    raises(ValueError, smtp.Auth, "PLAIN", "us\x00er", "x")


def test_auth_login():
    auth = smtp.Auth("LOGIN", "user", "secret")
    assert auth.start() == b"AUTH LOGIN\r\n"
    assert auth.respond(_one_reply(b"334 VXNlcm5hbWU6\r\n")) == b"dXNlcg==\r\n"
    assert auth.respond(_one_reply(b"334 UGFzc3dvcmQ6\r\n")) == b"c2VjcmV0\r\n"
    assert auth.respond(_one_reply(b"235 ok\r\n")) is None


def test_auth_login_extra_challenge_is_an_error():
    auth = smtp.Auth("LOGIN", "user", "secret")
    auth.start()
    auth.respond(_one_reply(b"334 VXNlcm5hbWU6\r\n"))
    auth.respond(_one_reply(b"334 UGFzc3dvcmQ6\r\n"))
    raises(smtp.SMTPError, auth.respond, _one_reply(b"334 more?\r\n"))


def test_auth_failure_names_the_fix():
    auth = smtp.Auth("PLAIN", "user", "wrong")
    auth.start()
    err = raises(smtp.SMTPReplyError, auth.respond, _one_reply(b"535 5.7.8 bad credentials\r\n"))
    assert err.permanent and "check user name and password" in str(err)


def test_hmac_md5_rfc2202_vectors():
    assert (binascii.hexlify(smtp.hmac_md5(b"\x0b" * 16, b"Hi There"))
            == b"9294727a3638bb1c13f48ef8158bfc9d")
    assert (binascii.hexlify(smtp.hmac_md5(b"Jefe", b"what do ya want for nothing?"))
            == b"750c783e6ab0b503eaa86e310a5db738")
    # Key longer than the 64-byte block: hashed first.
    assert (binascii.hexlify(smtp.hmac_md5(
        b"\xaa" * 80, b"Test Using Larger Than Block-Size Key - Hash Key First"))
        == b"6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")


def test_auth_cram_md5_rfc2195_example():
    auth = smtp.Auth("CRAM-MD5", "tim", "tanstaaftanstaaf")
    assert auth.start() == b"AUTH CRAM-MD5\r\n"
    challenge = binascii.b2a_base64(b"<1896.697170952@postoffice.reston.mci.net>")
    answer = auth.respond(_one_reply(b"334 " + challenge.strip() + b"\r\n"))
    assert binascii.a2b_base64(answer) == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert answer.endswith(b"\r\n")


def test_choose_mechanism():
    assert smtp.choose_mechanism(["LOGIN", "PLAIN"]) == "PLAIN"
    assert smtp.choose_mechanism(["cram-md5", "login"]) == "LOGIN"
    assert smtp.choose_mechanism(["CRAM-MD5"]) == "CRAM-MD5"
    assert smtp.choose_mechanism(["PLAIN", "CRAM-MD5"], "cram-md5") == "CRAM-MD5"
    assert "offers: PLAIN" in str(raises(smtp.SMTPError, smtp.choose_mechanism, ["PLAIN"],
                                         "LOGIN"))
    assert "XOAUTH2" in str(raises(smtp.SMTPError, smtp.choose_mechanism, ["XOAUTH2"]))
    assert "not supported" in str(raises(ValueError, smtp.choose_mechanism, ["NTLM"], "NTLM"))


def _framed(chunks):
    return b"".join(smtp.frame_data(chunks))


def test_frame_data_dot_stuffs_and_terminates():
    message = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nmid.dle\r\n.\r\nend\r\n"
    assert _framed([message]) == (b"Subject: x\r\n\r\n..hidden\r\n...two\r\nmid.dle\r\n..\r\n"
                                  b"end\r\n.\r\n")


def test_frame_data_any_split_gives_the_same_bytes():
    message = b".a\r\n\r\n.\r\nb.\r\n..\r\n.c\r\n"
    whole = _framed([message])
    for cut in range(len(message) + 1):
        for cut2 in range(cut, len(message) + 1):
            assert _framed([message[:cut], message[cut:cut2], message[cut2:]]) == whole


def test_frame_data_adds_the_missing_final_crlf():
    assert _framed([b"a\r\n.b"]) == b"a\r\n..b\r\n.\r\n"
    assert _framed([]) == b".\r\n"
    assert _framed([b""]) == b".\r\n"


def test_frame_data_refuses_bare_cr_and_lf():
    for bad in ([b"a\nb\r\n"], [b"\n"], [b"a\rb\r\n"], [b"a\r"], [b"a\r", b"b\r\n"],
                [b"ok\r\n", b"\r\r\n"]):
        err = raises(smtp.SMTPError, _framed, bad)
        assert "bare" in str(err), (bad, err)


def test_frame_data_line_length_limit():
    line = b"x" * 998
    assert _framed([line[:500], line[500:] + b"\r\n"]) == line + b"\r\n.\r\n"
    err = raises(smtp.SMTPError, _framed, [b"x" * 999 + b"\r\n"])
    assert "998" in str(err)
    # An endless line fails before it is all buffered.
    chunks = (b"y" * 100 for _ in range(11))
    raises(smtp.SMTPError, _framed, chunks)


def test_frame_data_streams_chunk_by_chunk():
    produced = []

    def source():
        for i in range(3):
            produced.append(i)
            yield b"line %d\r\n" % i

    framer = smtp.frame_data(source())
    assert next(framer) == b"line 0\r\n" and produced == [0]
    assert list(framer) == [b"line 1\r\n", b"line 2\r\n", b".\r\n"]


def test_timeouts_are_rfc_5321_4_5_3_2():
    # Greeting 5 min, MAIL 5 min, RCPT 5 min, DATA 2 min, each data block 3 min, final dot 10 min.
    t = smtp.TIMEOUTS
    assert (t["greeting"], t["MAIL"], t["RCPT"], t["DATA"], t["block"], t["dot"]) == (
        300, 300, 300, 120, 180, 600)


def test_every_outcome_entry():
    # One line per entry of smtp.OUTCOMES, and the table holds nothing untested.
    replies = ((250, "RCPT", smtp.DELIVERED), (251, "RCPT", smtp.DELIVERED),
               (354, "MAIL", smtp.RETRY), (421, "MAIL", smtp.RETRY),
               (450, "RCPT", smtp.RETRY), (452, "RCPT", smtp.RETRY),
               (550, "RCPT", smtp.FAILED), (554, "DATA", smtp.FAILED),
               (535, "AUTH", smtp.FAILED), (504, "RCPT", smtp.FAILED),
               (552, "RCPT", smtp.RETRY), (552, "end of DATA", smtp.FAILED),
               (552, "MAIL", smtp.FAILED))
    for code, command, expected in replies:
        assert smtp.outcome(code=code, command=command) == expected, (code, command)
    kinds = (("connection", smtp.RETRY), ("timeout", smtp.RETRY),
             ("delivery_unknown", smtp.RETRY), ("protocol", smtp.RETRY),
             ("starttls", smtp.RETRY), ("wrong_port", smtp.RETRY), ("memory", smtp.RETRY),
             ("too_big", smtp.FAILED), ("unsendable", smtp.FAILED))
    for kind, expected in kinds:
        assert smtp.outcome(kind) == expected, kind
    for tls_kind in ("unknown_ca", "hostname", "expired", "clock_unset"):  # not entries: retried
        assert smtp.outcome(tls_kind) == smtp.RETRY
    entries = ["2yz", "3yz", "4yz", "5yz", "RCPT 552"] + [k for k, _ in kinds]
    assert sorted(smtp.OUTCOMES) == sorted(entries)


def test_reply_kinds():
    def kind(command, raw):
        return smtp.reply_kind(command, _one_reply(raw))
    assert kind("AUTH", b"535 5.7.8 Authentication credentials invalid\r\n") == "auth"
    assert kind("AUTH", b"454 4.7.0 Temporary authentication failure\r\n") == "auth"
    assert kind("RCPT", b"504 5.5.2 <localhost>: Helo command rejected: need fully-qualified "
                        b"hostname\r\n") == "ehlo_name"
    assert kind("EHLO", b"501 5.5.4 Invalid EHLO domain\r\n") == "ehlo_name"
    assert kind("end of DATA", b"552 5.3.4 Message size exceeds fixed limit\r\n") == "too_big"
    assert kind("MAIL", b"552 5.3.4 Message size exceeds fixed limit\r\n") == "too_big"
    assert kind("RCPT", b"552 5.5.3 Too many recipients\r\n") == "refused"
    assert kind("RCPT", b"550 5.1.1 no such user\r\n") == "refused"
    assert kind("MAIL", b"451 4.3.0 try later\r\n") == "deferred"
    assert kind("STARTTLS", b"454 4.7.0 TLS not available\r\n") == "starttls"
    # A 4xx that mentions HELO is temporary: not a reason to change the name.
    assert kind("RCPT", b"450 4.7.1 Helo command rejected: Host not found\r\n") == "deferred"
