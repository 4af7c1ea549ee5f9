"""Row 8: the demo server in the networked QEMU Cortex-M3 and Cortex-M4 images (lwIP on the
LAN9118), requested from the host, in guest instructions: a first HTTPS request (TCP SYN to the
last byte of the response, full handshake included), one keep-alive GET of the demo page, a
256 KB static file per byte; and how many TLS sessions fit at once.

Only the guest's instructions count, and only those it ran in answer to the host: QEMU runs with
-icount shift=0 (one instruction per virtual ns) and sleep on (an idle guest's clock follows
the host's, so the server's timeouts hold), and the board is tickless (ticks.c): nothing wakes
the guest but a frame, a console character or a deadline. machine.busy_cycles() leaves out the
time asleep and the wake-ups only a deadline caused (lwIP's timers), whose number follows the
host's clock; after each wake-up the guest falls into step with its clock's 40 ns tick, so the
counts repeat to the instruction when the host's packets do. What made them differ before, and
what the bench does about it: each request is bracketed by two console marks, each of which
sets the guest's clock to a fixed time (the Date header) and collects garbage outside the
count; the host sends every TLS flight in one write (tls_flights.py), new connections come from
tlslite-ng with its random numbers from a fixed seed (the server's ECDHE work depends on the
client's share), the guest has a static address and the server's 100 ms watchdog off
(guest_https.py), and the counts start once the uptime on the page has two digits.
The host's own work is not counted.
"""
import re
import ssl
import time
from pathlib import Path

import cortex_m
from tls_flights import ERRORS, FlightClient, SeededClient

from netsec_cli import qemu

ROOT = Path(__file__).resolve().parents[1]
CA = ROOT / "tests" / "certs" / "default" / "ca.pem"  # signs the images' default credentials
HOSTNAME = "localhost"
ICOUNT = "shift=0"
REPEAT = 3
BIG = 256 * 1024
SESSION_LIMIT = 24  # bounds the sessions-that-fit loop
# Host seconds to wait after a request before the closing mark: whatever the request left to
# do in the guest (ACKs, the loop back to reading) is done by then.
SETTLE_S = 0.3
# The demo page shows the uptime in seconds: start counting once it has two digits, so that
# every run renders the same number of digits (a boot's count ends well within 100 s).
UPTIME_TWO_DIGITS_S = 11
GUEST_APP = "import asyncio, guest_https\nasyncio.run(guest_https.main(%d))" % SESSION_LIMIT
READY = "netsec https server on"
# Made in the guest (faster than copying it over the console): the BIG-byte static file.
MAKE_BIG = ("import os\ntry:\n    os.mkdir('/www')\nexcept OSError:\n    pass\n"
            "with open('/www/big.bin', 'wb') as f:\n    for i in range(%d):\n"
            "        f.write(bytes([i & 0xff]) * 1024)" % (BIG // 1024))


class Marks:
    """Reads guest_https.py's marks from its console: [busy now, busy when the previous mark
    ended, timer cycles now], in instructions."""

    def __init__(self, guest, per_tick):
        self.guest, self.per_tick, self.seen = guest, per_tick, 0

    def __call__(self):
        self.guest.send(b"m")
        deadline = time.monotonic() + 30
        while True:
            found = re.findall(r"busy (\d+) (\d+) (\d+)\r?\n", self.guest.output())  # whole lines
            if len(found) > self.seen:
                self.seen = len(found)
                return [int(n) * self.per_tick for n in found[-1]]
            if time.monotonic() > deadline:
                raise RuntimeError("no busy count from the guest:\n" + self.guest.output())
            time.sleep(0.01)

    def count(self, action):
        """Guest instructions run in answer to action() (from the end of one mark to the next)
        and, apart, the timer instructions meanwhile."""
        before = self()
        action()
        time.sleep(SETTLE_S)
        after = self()
        return after[0] - after[1], after[2] - before[2]


def _context():
    return ssl.create_default_context(cafile=str(CA))


def _sessions_that_fit(port):
    """Keep-alive sessions, each served one GET, opened until one fails: (held, what failed)."""
    held, failed = [], "the limit of %d" % SESSION_LIMIT
    try:
        while len(held) < SESSION_LIMIT:
            client = SeededClient(port, HOSTNAME, len(held))
            try:
                client.get("/api/status")
            except ERRORS as e:
                failed = type(e).__name__
                client.close()
                break
            held.append(client)
        return len(held), failed
    finally:
        for client in held:
            client.close()


def measure_once(image):
    per_tick = cortex_m.instructions_per_tick()
    network = qemu.GuestNetwork(hostfwd={443: 0})
    with qemu.Guest(image, icount=ICOUNT, network=network) as guest:
        guest.exec(MAKE_BIG, timeout=120)
        guest.write("/guest_https.py", (Path(__file__).parent / "guest_https.py").read_bytes())
        guest.start(GUEST_APP, READY, timeout=120)
        ready = time.monotonic()
        port = guest.host_port(443)
        mark = Marks(guest, per_tick)
        rows = {"nothing": [], "first_request": [], "new_connection_request": [],
                "keep_alive_get": [], "static_256k": []}
        timers = []

        def sample(name, action):
            busy, timer = mark.count(action)
            rows[name].append(busy)
            timers.append(timer)

        def new_connection(name, seed):
            clients = []

            def request():  # connects inside the count: the TCP SYN is part of the request
                clients.append(SeededClient(port, HOSTNAME, seed))
                clients[0].get("/")

            sample(name, request)
            clients[0].close()
            time.sleep(SETTLE_S)

        time.sleep(max(0.0, UPTIME_TWO_DIGITS_S - (time.monotonic() - ready)))
        for _ in range(REPEAT):
            sample("nothing", lambda: None)
        new_connection("first_request", 0)
        for seed in range(1, REPEAT + 1):
            new_connection("new_connection_request", seed)
        client = FlightClient(port, _context(), HOSTNAME)
        client.get("/")
        time.sleep(SETTLE_S)
        for _ in range(REPEAT):
            sample("keep_alive_get", lambda: client.get("/"))
        sizes = []
        for _ in range(REPEAT):
            sample("static_256k", lambda: sizes.append(len(client.get("/static/big.bin"))))
        client.close()
        if sizes != [BIG] * REPEAT:
            raise RuntimeError("the static file came back as %r bytes" % sizes)
        rows["sessions_that_fit"], rows["next_session_failed_with"] = _sessions_that_fit(port)
        rows["timer_instructions"] = timers
        guest.interrupt()
    return rows


FIGURES = ("first_request", "new_connection_request", "keep_alive_get", "static_256k")


def _mean(samples, less):
    return sum(samples) / len(samples) - less


def measure(image):
    """Two boots of `image`: each figure on each boot (the mean of its samples, less the mean
    cost of two marks with nothing between them), the raw samples, and by how many
    instructions the boots' samples differ at most."""
    boots = [measure_once(image), measure_once(image)]
    nothing = sum(boots[0]["nothing"]) / len(boots[0]["nothing"])
    result = {"boots": boots, "nothing": nothing}
    for name in FIGURES:
        result[name] = [_mean(b[name], nothing) for b in boots]
        result[name + "_boots_differ_by"] = max(abs(x - y) for x, y in zip(boots[0][name],
                                                                           boots[1][name]))
    result["static_per_byte"] = [n / BIG for n in result["static_256k"]]
    result["sessions_that_fit"] = [b["sessions_that_fit"] for b in boots]
    result["next_session_failed_with"] = [b["next_session_failed_with"] for b in boots]
    result["timer_instructions_per_count"] = max(max(b["timer_instructions"]) for b in boots)
    result["qemu"] = " ".join(qemu.qemu_command(image, icount=ICOUNT, network=qemu.GuestNetwork()))
    result["host_side"] = {"new_connections": "tlslite-ng, random numbers from a fixed seed",
                           "keep_alive": "CPython ssl over memory BIOs",
                           "every_flight": "one write, TCP_NODELAY"}
    return result


if __name__ == "__main__":  # one image, one boot: python bench/cortex_m_https.py IMAGE
    import json
    import sys
    print(json.dumps(measure_once(sys.argv[1]), indent=1))
