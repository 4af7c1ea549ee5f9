"""netsec.outbox on the unix image: mail queued on "flash" (a directory) reaches a real relay
despite a relay that is down, drops the connection mid-DATA, answers 421/451, or a device that is
killed with mail queued - exactly once per Message-ID at the receiver. 5xx moves mail to failed/,
a full outbox refuses new mail and keeps the old."""
import asyncio
import json
import signal
import socket
import threading

import pytest

from mpy import MicroPython, free_port
from targets import QemuTarget, UnixTarget
from test_mail import MESSAGE_BUILDER, Inbox, config_file, flash, pki_set, relays  # noqa: F401

pytestmark = pytest.mark.device

# Queues the configured messages, starts background delivery and runs until the outbox is empty
# (or forever, for the kill test). Retries come after 1 s, then 2 s.
OUTBOX = MESSAGE_BUILDER + """
from netsec import outbox

box = outbox.Outbox(relay_from(cfg), "outbox", max_bytes=cfg.get("max_bytes", 256 * 1024),
                    retry_min=1, retry_max=2)

async def main():
    for spec in cfg.get("queue", ()):
        try:
            print("queued", box.queue(build(spec)))
        except Exception as e:
            print("refused", type(e).__name__, e)
    box.start()
    while cfg.get("forever") or box.pending():
        await asyncio.sleep(0.1)
    print("failed", json.dumps(box.failed()))
    print("done")

asyncio.run(main())
"""


def message(n, **extra):
    spec = {"from": "device7@example.com", "to": "ops@example.com",
            "subject": "report %d" % n, "text": "report number %d\n" % n}
    spec.update(extra)
    return spec


def outbox(image, flash, cfg):
    """The OUTBOX script on the unix image, or on a target (tests/device/targets.py)."""
    if isinstance(image, (UnixTarget, QemuTarget)):
        return image.program(OUTBOX, flash, [config_file(flash, cfg)])
    return MicroPython(image, OUTBOX, flash, [config_file(flash, cfg)])


def queued_ids(mp, count):
    return [mp.expect("queued ").split()[1] for _ in range(count)]


def received_ids(inbox):
    ids = []
    for envelope in inbox.messages:
        for line in envelope.original_content.split(b"\r\n"):
            if line.startswith(b"Message-ID: "):
                ids.append(line[12:].decode())
    return ids


def outbox_files(flash):
    folder = flash / "outbox"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def finished(mp):
    """Wait until the script's outbox is empty; return its failed() entries."""
    failed = json.loads(mp.expect("failed ", timeout=60)[len("failed "):])
    mp.expect("done", timeout=5)
    return failed


class FlakyInbox(Inbox):
    """Answers end-of-DATA from a script (then accepts); records every attempt's Message-ID."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)
        self.attempts = []

    async def handle_DATA(self, server, session, envelope):
        self.attempts.append(envelope.original_content)
        if self.answers:
            return self.answers.pop(0)
        return await super().handle_DATA(server, session, envelope)


# Why the first attempt fails: the unix image's connect is refused; QEMU's guestfwd accepts the
# guest's connection, only then finds the relay down and resets it: lwIP reports ECONNRESET.
RELAY_DOWN = {"unix": "connection failed: ECONNREFUSED)",
              "qemu": "connection failed: ECONNRESET)"}


def test_relay_down_when_queued_then_delivered_once(target, flash, relays):
    host_port = target.service_port("tls")
    port = target.device_port("tls", host_port)
    with outbox(target, flash, {"host": target.service_host, "port": port, "security": "tls",
                                "queue": [message(1), message(2)]}) as mp:
        ids = queued_ids(mp, 2)
        if target.name == "unix":  # the guest's files can be listed only once it is done
            assert len(outbox_files(flash)) == 4  # on flash before any delivery attempt
        warning = mp.expect("WARNING mail: relay unavailable (relay %s:%d: "
                            % (target.service_host, port))
        assert RELAY_DOWN[target.name] in warning, warning
        inbox = Inbox()
        relays(inbox, "tls", port=host_port)
        assert finished(mp) == []
        assert mp.output.count("INFO mail: delivered ") == 2
    assert sorted(received_ids(inbox)) == sorted(ids)
    assert target.files(flash, "outbox") == []


class CuttingProxy:
    """TCP proxy to a relay that drops its first connection after `cut` bytes from the client."""

    def __init__(self, target_port, cut):
        self.target_port = target_port
        self.cut = cut
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            limit = self.cut if self.connections == 1 else None
            threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, source, sink, limit):
        sent = 0
        try:
            while True:
                data = source.recv(4096)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    break  # the cut: both ends go away with the message half sent
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


def test_connection_dropped_mid_data_then_delivered_once(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls")
    proxy = CuttingProxy(relay.port, cut=40000)
    big = message(1, attach=[["big.bin", (bytes(range(256)) * 300).hex()]])  # ~100 KB on the wire
    try:
        with outbox(unix_image, flash, {"port": proxy.port, "security": "tls",
                                        "queue": [big]}) as mp:
            ids = queued_ids(mp, 1)
            line = mp.expect("WARNING mail: %s not delivered (attempt 1)" % ids[0])
            assert finished(mp) == []
    finally:
        proxy.close()
    assert "relay localhost:%d: " % proxy.port in line
    assert proxy.connections == 2
    assert received_ids(inbox) == ids


def test_421_and_451_are_retried_and_delivered_once(unix_image, flash, relays):
    inbox = FlakyInbox(["451 4.3.0 Mail server temporarily rejected message",
                        "421 4.3.2 System not accepting network messages"])
    relay = relays(inbox, "tls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls",
                                    "queue": [message(1)]}) as mp:
        ids = queued_ids(mp, 1)
        mp.expect("WARNING mail: %s not delivered (attempt 1): relay localhost:%d: end of DATA "
                  "refused: 451" % (ids[0], relay.port))
        mp.expect("WARNING mail: %s not delivered (attempt 2): relay localhost:%d: end of DATA "
                  "refused: 421" % (ids[0], relay.port))
        assert finished(mp) == []
    # Every try carried the same bytes, so the same Message-ID; one was accepted.
    assert len(inbox.attempts) == 3 and len(set(inbox.attempts)) == 1
    assert received_ids(inbox) == ids


def test_550_moves_the_message_to_failed_with_the_reason(unix_image, flash, relays):
    inbox = Inbox(refuse={"gone@example.com": "550 5.1.1 <gone@example.com>: no such user"})
    relay = relays(inbox, "tls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls",
                                    "queue": [message(1, to="gone@example.com"),
                                              message(2, to=["ops@example.com",
                                                             "gone@example.com"])]}) as mp:
        ids = queued_ids(mp, 2)
        failed = finished(mp)
        assert "not delivered (attempt" not in mp.output  # no retry
    assert inbox.rcpt_commands.count("gone@example.com") == 2  # once per message: no retry
    assert [f["id"] for f in failed] == ids
    for entry in failed:
        assert entry["refused"] == {
            "gone@example.com": "550 5.1.1 <gone@example.com>: no such user"}
        assert "gone@example.com: 550 5.1.1" in entry["error"]
        # failed/ lists only who did not get it: re-sending it from there duplicates nothing.
        assert entry["to"] == ["gone@example.com"]
    assert failed[1]["delivered"] == ["ops@example.com"]
    assert received_ids(inbox) == [ids[1]]  # the second reached its other recipient
    assert ("ERROR mail: %s not delivered to gone@example.com (delivered to ops@example.com)"
            % ids[1]) in mp.output
    assert "failed permanently" not in mp.output
    failed_files = sorted(p.name for p in (flash / "outbox" / "failed").iterdir())
    assert failed_files == ["00000000.eml", "00000000.env", "00000001.eml", "00000001.env"]
    assert outbox_files(flash) == []


def test_message_over_the_relay_size_limit_fails_with_the_reason(unix_image, flash, relays):
    inbox = Inbox()
    relay = relays(inbox, "tls", data_size_limit=5000)
    big = message(1, attach=[["big.bin", bytes(8000).hex()]])
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls",
                                    "queue": [big, message(2)]}) as mp:
        ids = queued_ids(mp, 2)
        failed = finished(mp)
    assert [f["id"] for f in failed] == [ids[0]]
    assert "accepts at most 5000 bytes, the message has " in failed[0]["error"]
    assert received_ids(inbox) == [ids[1]]


def test_killed_with_mail_queued_then_sent_after_restart(unix_image, flash, relays):
    port = free_port()
    with outbox(unix_image, flash, {"port": port, "security": "tls", "forever": True,
                                    "queue": [message(1), message(2)]}) as mp:
        ids = queued_ids(mp, 2)
        mp.expect("WARNING mail: relay unavailable")
        mp.process.send_signal(signal.SIGKILL)  # power cut: no cleanup of any kind
        mp.process.wait(10)
    inbox = Inbox()
    relays(inbox, "tls", port=port)
    with outbox(unix_image, flash, {"port": port, "security": "tls"}) as mp:
        mp.expect("INFO mail: outbox outbox holds 2 message(s) to deliver")
        assert finished(mp) == []
    assert sorted(received_ids(inbox)) == sorted(ids)
    assert outbox_files(flash) == []


def test_restart_finishes_what_a_power_cut_interrupted(unix_image, flash, relays):
    port = free_port()
    with outbox(unix_image, flash, {"port": port, "security": "tls", "forever": True,
                                    "queue": [message(n) for n in range(4)]}) as mp:
        ids = queued_ids(mp, 4)
        mp.expect("WARNING mail: relay unavailable")
        mp.process.send_signal(signal.SIGKILL)
        mp.process.wait(10)
    box = flash / "outbox"
    # 0: cut while its envelope was replaced on FAT (old one removed, new one not yet renamed).
    (box / "00000000.env").rename(box / "00000000.env.tmp")
    # 1: cut while queue() wrote it (the message is there, its envelope never was): not queued.
    (box / "00000001.env").unlink()
    # 2: cut while moving it to failed/ (its failed record is written, the rest is not).
    envelope = json.loads((box / "00000002.env").read_text())
    envelope["error"] = "relay said 550"
    (box / "failed" / "00000002.env").write_text(json.dumps(envelope))
    # 3: untouched. 4: cut while queue() wrote its envelope: half a JSON document.
    (box / "00000004.eml").write_bytes(b"Subject: half\r\n")
    (box / "00000004.env.tmp").write_text('{"id": "<half')
    inbox = Inbox()
    relays(inbox, "tls", port=port)
    with outbox(unix_image, flash, {"port": port, "security": "tls"}) as mp:
        mp.expect("INFO mail: outbox outbox holds 2 message(s) to deliver")
        failed = finished(mp)
    assert sorted(received_ids(inbox)) == sorted([ids[0], ids[3]])
    assert [(f["name"], f["id"], f["error"]) for f in failed] == [("00000002", ids[2],
                                                                     "relay said 550")]
    assert outbox_files(flash) == []
    assert sorted(p.name for p in (box / "failed").iterdir()) == ["00000002.eml", "00000002.env"]


def test_full_outbox_refuses_new_mail_and_keeps_the_old(unix_image, flash, relays):
    port = free_port()
    cfg = {"port": port, "security": "tls", "max_bytes": 4000, "forever": True,
           "queue": [message(1), message(2, text="x" * 3300), message(3)]}
    with outbox(unix_image, flash, cfg) as mp:
        first = queued_ids(mp, 1)
        refused = mp.expect("refused ")
        third = queued_ids(mp, 1)
        mp.expect("WARNING mail: relay unavailable")
        mp.process.send_signal(signal.SIGKILL)
        mp.process.wait(10)
    assert refused.startswith("refused OutboxFull outbox outbox is full: the message needs ")
    assert "of max_bytes=4000 are in use by 1 queued" in refused
    assert "nothing queued was dropped" in refused
    assert len(outbox_files(flash)) == 4  # the two that fitted; nothing half-written
    inbox = Inbox()
    relays(inbox, "tls", port=port)
    with outbox(unix_image, flash, {"port": port, "security": "tls"}) as mp:
        assert finished(mp) == []
    assert sorted(received_ids(inbox)) == sorted(first + third)


def test_starttls_with_auth_delivers_from_the_outbox(unix_image, flash, relays):
    from test_mail import PASSWORD, USER
    inbox = Inbox()
    relay = relays(inbox, "starttls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "starttls", "user": USER,
                                    "password": PASSWORD,
                                    "queue": [message(1), message(2), message(3)]}) as mp:
        ids = queued_ids(mp, 3)
        assert finished(mp) == []
        # One connection, one handshake, one login for all three.
        assert mp.output.count("VERIFIED peer=") == 1
    assert inbox.auth == [("PLAIN", USER)]
    assert received_ids(inbox) == ids


def test_a_damaged_entry_does_not_hold_up_the_others(unix_image, flash, relays):
    port = free_port()
    with outbox(unix_image, flash, {"port": port, "security": "tls",
                                    "queue": [message(1), message(2)]}) as mp:
        ids = queued_ids(mp, 2)
        first_env = flash / "outbox" / outbox_files(flash)[1]  # 00000000.eml, 00000000.env, ...
        assert first_env.suffix == ".env"
        first_env.write_text('{"id": "truncated by a power cut')
        inbox = Inbox()
        relays(inbox, "tls", port=port)
        failed = finished(mp)
    assert received_ids(inbox) == [ids[1]]
    assert len(failed) == 1 and "damaged queue entry" in failed[0]["error"]
    # Nothing is lost: the damaged entry's message waits in failed/ for a person.
    kept = flash / "outbox" / "failed" / (failed[0]["name"] + ".eml")
    assert ids[0].encode() in kept.read_bytes()


# --- issue 13: field findings -------------------------------------------------------------------


def test_wrong_password_moves_mail_to_failed_instead_of_retrying_for_ever(unix_image, flash,
                                                                        relays):
    from test_mail import USER
    inbox = Inbox()
    relay = relays(inbox, "tls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls", "user": USER,
                                    "password": "wrong",
                                    "queue": [message(1), message(2)]}) as mp:
        ids = queued_ids(mp, 2)
        failed = finished(mp)
    assert [f["id"] for f in failed] == ids
    assert all("AUTH PLAIN (check user name and password) refused: 535" in f["error"]
               for f in failed), failed
    assert "relay unavailable" not in mp.output and inbox.messages == []
    assert inbox.quits == 1  # one session, ended politely


class SlowRecipient(Inbox):
    """Refuses later@example.com with 450 the first time, then takes it."""

    def __init__(self):
        super().__init__()
        self.refuse = {"later@example.com": "450 4.2.1 Mailbox busy, try later"}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        if address == "later@example.com":
            self.refuse = {}
        return reply


def test_recipients_who_got_it_are_not_sent_it_again(unix_image, flash, relays):
    inbox = SlowRecipient()
    relay = relays(inbox, "tls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls", "queue": [
            message(1, to=["ops@example.com", "later@example.com"])]}) as mp:
        ids = queued_ids(mp, 1)
        assert finished(mp) == []
    assert [e.rcpt_tos for e in inbox.messages] == [["ops@example.com"], ["later@example.com"]]
    assert received_ids(inbox) == ids * 2
    assert "later@example.com: 450 4.2.1 Mailbox busy" in mp.output


class SlowScanner(Inbox):
    """Takes every message, but answers the first one's final dot only after `delay` seconds."""

    def __init__(self, delay):
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == 1:
            await asyncio.sleep(self.delay)
        return reply


def test_unknown_delivery_is_sent_again_and_said_so(unix_image, flash, relays):
    # No reply to the final dot within smtp.TIMEOUTS["dot"] (scaled to 3 s): the relay may have
    # it. The outbox sends it again (at least once), and says both times that it may arrive twice.
    inbox = SlowScanner(delay=6)
    relay = relays(inbox, "tls")
    with outbox(unix_image, flash, {"port": relay.port, "security": "tls", "timeout_scale": 0.005,
                                    "queue": [message(1)]}) as mp:
        ids = queued_ids(mp, 1)
        line = mp.expect("WARNING mail: %s not delivered (attempt 1): relay localhost:%d: delivery "
                         "unknown (the relay may have it): no answer within 3 s while waiting for "
                         "the reply to the final dot" % (ids[0], relay.port))
        assert line.endswith("the next try may give recipients a second copy, with the same "
                             "Message-ID)")
        assert finished(mp) == []
        assert ("INFO mail: delivered %s (sent again after its delivery was unknown" % ids[0]
                in mp.output)
    assert received_ids(inbox) == ids * 2


def test_a_message_larger_than_the_outbox_is_too_big_not_full(unix_image, flash):
    cfg = {"port": free_port(), "security": "tls", "max_bytes": 3000,
           "queue": [message(1, attach=[["big.bin", bytes(5000).hex()]])]}
    with outbox(unix_image, flash, cfg) as mp:
        refused = mp.expect("refused ")
        assert finished(mp) == []
    assert refused.startswith("refused TooBig message <")
    assert "is too big for the outbox: " in refused and ", max_bytes=3000;" in refused
    size = int(refused.split("too big for the outbox: ")[1].split()[0])
    assert 5000 * 4 // 3 < size < 5000 * 4 // 3 + 1500  # base64 and the headers
    assert outbox_files(flash) == []


START_OUTSIDE_A_LOOP = MESSAGE_BUILDER + """
from netsec import outbox
box = outbox.Outbox(relay_from(cfg), "outbox")
try:
    box.start()
except RuntimeError as e:
    print("refused", e)
"""


def test_start_without_a_running_loop_says_how_to_run_it(unix_image, flash):
    with MicroPython(unix_image, START_OUTSIDE_A_LOOP, flash,
                     [config_file(flash, {"port": free_port(), "security": "tls"})]) as mp:
        line = mp.expect("refused ")
    assert "Outbox.start() needs a running asyncio loop" in line
    assert "asyncio.run(outbox.run())" in line
