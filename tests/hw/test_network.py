"""A board on a network: its HTTPS server (netsec.demo, with credentials made and deployed here)
verified by this machine's curl, openssl and CPython, and mail from the board to a relay this test
starts, over implicit TLS and STARTTLS, the relay verified by the board."""
import http.client
import json
import ssl
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller
from harness import require_tool

pytestmark = pytest.mark.hw

DEMO_READY = "https server on"


@pytest.fixture(scope="module")
def relay_identity(identity, link):
    """The relay's CA and certificate, valid for the address the board connects to."""
    return identity("relay", hosts=(link.relay_for_board[0],))


@pytest.fixture(scope="module")
def board_identity(board, clock_set, identity, deploy, link, relay_identity):
    """The board's own identity for its names on this link, trusting the relay's CA; deployed."""
    made = identity("board", hosts=link.names, email_server_ca=relay_identity.ca_pem)
    deploy(made)
    return made


@pytest.fixture(scope="module")
def machine(board):
    """What the board says it is (sys.implementation._machine)."""
    return board.eval("__import__('sys').implementation._machine")


@pytest.fixture
def demo(board, board_identity):
    """netsec.demo running on the board; stopped (Ctrl-C) after the test."""
    board.start("from netsec import demo\ndemo.main()", ready=DEMO_READY)
    yield board
    board.interrupt()
    board.soft_reset()


def test_curl_verifies_the_board_server(demo, link, board_identity):
    url = "https://%s:%d/" % (link.names[0], link.https[1])
    result = subprocess.run([require_tool("curl"), "-sS", "--max-time", "60", "--cacert",
                             str(board_identity.ca_pem), url], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr + demo.output()
    assert "netsec" in result.stdout


def test_openssl_verifies_chain_and_name(demo, link, board_identity):
    host, port = link.https
    name = link.names[0]
    check = ["-verify_ip", name] if name[0].isdigit() else ["-verify_hostname", name]
    result = subprocess.run([require_tool("openssl"), "s_client", "-connect", "%s:%d" % (host, port),
                             "-CAfile", str(board_identity.ca_pem), "-verify_return_error",
                             "-brief", *check], input="", capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stderr
    assert "Peer certificate: CN = %s" % board_identity.subject[3:] in result.stderr


def test_cpython_reads_the_status_of_the_board(demo, link, board_identity, machine):
    context = ssl.create_default_context(cafile=str(board_identity.ca_pem))
    conn = http.client.HTTPSConnection(link.names[0], link.https[1], context=context, timeout=60)
    try:
        conn.request("GET", "/api/status")
        response = conn.getresponse()
        status = json.loads(response.read())
    finally:
        conn.close()
    assert response.status == 200
    assert status["machine"] == machine
    assert status["tls_sessions"] >= 1


class Inbox:
    """aiosmtpd handler keeping what arrives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 2.0.0 Accepted"


SEND = """
import asyncio
from netsec import mail, mime

async def main():
    relay = mail.Relay(%(host)r, %(port)d, security=%(security)r)
    message = mime.Message("board@netsec.test", to="ops@netsec.test", subject=%(subject)r,
                           text="sent by the board\\n")
    results = await relay.send(message)
    print(sorted((r, results[r].code) for r in results))

asyncio.run(main())
"""


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_mail_reaches_a_relay_on_this_machine(board, board_identity, relay_identity, link, security):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(relay_identity.cert_pem), str(relay_identity.key_pem))
    inbox = Inbox()
    host, port = link.relay_bind
    options = {"ssl_context": context} if security == "tls" else \
        {"tls_context": context, "require_starttls": True}
    relay = Controller(inbox, hostname=host, port=port, **options)
    relay.start()
    subject = "hw test over %s %d" % (security, time.time_ns())
    try:
        out = board.exec(SEND % {"host": link.relay_for_board[0], "port": link.relay_for_board[1],
                                 "security": security, "subject": subject}, timeout=120)
    finally:
        relay.stop()
    assert out.strip().splitlines()[-1] == "[('ops@netsec.test', 250)]", out
    (envelope,) = inbox.messages
    assert envelope.rcpt_tos == ["ops@netsec.test"]
    assert b"Subject: " + subject.encode() in envelope.original_content
