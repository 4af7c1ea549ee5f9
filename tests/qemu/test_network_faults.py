"""Faults on the guest's network. lwIP's buffers are in the guest's MicroPython heap
(boards/QEMU_MPS2_AN385/lwip_heap.c): a flood that fills lwIP's receive budget drops frames and
closes connections with a log line, never hangs or crashes the server, and the heap comes back;
a soft reset while lwIP holds buffers leaves lwIP nothing in the swept heap. A DHCP server that
never answers stops the demo's start-up with one line saying so."""
import http.client
import json
import socket
import ssl
import struct
import time

import pytest

from harness import CERTS
from netsec_cli import qemu, run
from netsec_cli.device import DeviceError

CA = str(CERTS / "ca.pem")
READY = "netsec https server on"

# Two sessions at once, so that more connections wait (accepted, plain TCP) with their data
# unread while two clients hold both slots with a request head they never finish (6 s at most);
# /heap says what the heap and lwIP hold.
APP = """
import gc, network
from netsec import lan
from netsec.server import Server
lan.up()
app = Server(port=443, max_sessions=2, head_timeout=6)

@app.route("/heap")
async def heap(request):
    gc.collect()
    return {"free": gc.mem_free(), "buffers": network.LAN().status("buffers"), "stats": app.stats}

app.run()
"""


@pytest.fixture(scope="module")
def net_guest(qemu_image, tmp_path_factory):
    guest = qemu.Guest(qemu_image, log_path=tmp_path_factory.mktemp("qemu-lwip") / "qemu.log",
                       network=qemu.GuestNetwork(hostfwd={443: 0}))
    yield guest
    guest.stop()


def fresh(guest, code, ready):
    """Stop what runs, soft-reset, start code; wait for ready."""
    guest.enter_raw_repl()
    guest.soft_reset()
    return guest.start(code, ready, timeout=60)


def heap(port):
    conn = http.client.HTTPSConnection("localhost", port, timeout=60,
                                       context=ssl.create_default_context(cafile=CA))
    try:
        conn.request("GET", "/heap")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def settled(port, timeout=60):
    """/heap once only its own session is left."""
    deadline = time.monotonic() + timeout
    while True:
        info = heap(port)
        if info["stats"]["active"] == 1 and info["stats"]["waiting"] == 0 \
                or time.monotonic() > deadline:
            return info
        time.sleep(0.5)


def reset_all(socks):
    for sock in socks:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


def test_a_flood_of_unread_data_fills_lwips_receive_budget_and_serving_goes_on(net_guest):
    """Two clients take both session slots with a request head they never finish; then 10
    connections each send 64 KB that begins like a TLS record and wait, accepted, with their
    data unread, so lwIP's received frames reach their budget and further frames are dropped
    (TCP sends them again). No hang, no crash: the slow heads time out and each flooding
    connection is closed with a log line, a normal client is served, and the heap and lwIP's
    buffers come back."""
    fresh(net_guest, APP, READY)
    port = net_guest.host_port(443)
    base = settled(port)
    # At most the TLS 1.3 session ticket sent after the handshake is unacknowledged here.
    assert base["buffers"][0] == 0 and base["buffers"][1] < 1024, base
    record = b"\x16\x03\x01\x40\x00" + bytes(64 * 1024)
    flood = []
    try:
        for _ in range(2):
            raw = socket.create_connection(("127.0.0.1", port), timeout=30)
            slow = ssl.create_default_context(cafile=CA).wrap_socket(raw, server_hostname="localhost")
            slow.sendall(b"GET /heap HTTP/1.1\r\nHost: localhost\r\n")
            flood.append(slow)
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.setblocking(False)
            try:
                sock.send(record)
            except BlockingIOError:
                pass
            flood.append(sock)
        deadline = time.monotonic() + 30
        while net_guest.output().count(": closed: ") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # until both heads time out; then the waiting ones get their turn
        time.sleep(2)
    finally:
        reset_all(flood)
    after = settled(port)
    out = net_guest.output()
    assert net_guest.running.alive(), net_guest.running.log()
    assert after["buffers"][2] > base["buffers"][2], ("no frame was dropped", base, after, out)
    assert after["buffers"][0] == 0 and after["buffers"][1] < 1024, after
    assert abs(after["free"] - base["free"]) < 2048, (base, after, out)
    assert after["stats"]["handshake_failures"] >= 2, (after, out)
    assert out.count(": closed: too slow") == 2, out  # the slow heads
    # Each flooding connection served is closed with a line: its bytes are no TLS, or it was
    # reset while it waited.
    assert out.count(": TLS error: ") + out.count(": connection ended: ") >= 2, out
    assert "Traceback" not in out and "out of memory" not in out, out


# Leaves lwIP holding buffers in the heap and ends: a connection from the host, open; a connection
# to a LAN address nobody answers ARP for, in SYN-SENT (its SYN queued, a copy waiting for ARP);
# a UDP datagram to another such address, waiting for ARP.
HOLD = """
import network, socket
from netsec import lan
lan.up()
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", 443))
listener.listen(1)
print("listening")
held = [listener.accept()[0], socket.socket(), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
held[1].setblocking(False)
try:
    held[1].connect(("10.0.2.77", 443))
except OSError:
    pass  # EINPROGRESS
held[2].sendto(bytes(1400), ("10.0.2.78", 9))
print("holding", network.LAN().status("buffers"))
"""


def test_a_soft_reset_while_lwip_holds_buffers_leaves_it_none_in_the_swept_heap(net_guest):
    """A soft reset frees the whole heap. lwip_heap.c first aborts lwIP's connections (the host
    sees its one end) and drops what waits for ARP; without that, lwIP would go on pointing into
    the swept heap (its timers resend from it, and the next allocation corrupts the heap)."""
    fresh(net_guest, HOLD, "listening")
    client = socket.create_connection(("127.0.0.1", net_guest.host_port(443)), timeout=10)
    try:
        out, err = net_guest.finish(timeout=30)
        assert not err, err
        held = out.split("holding", 1)[1].strip()
        assert held != "(0, 0, 0)" and held.startswith("(0, "), out  # lwIP's own buffers only
        net_guest.soft_reset()
        assert net_guest.eval("__import__('network').LAN().status('buffers')")[:2] == (0, 0)
        try:
            assert client.recv(1) == b""
        except ConnectionResetError:
            pass
        net_guest.start(APP, READY, timeout=60)
        for _ in range(3):
            info = heap(net_guest.host_port(443))
            assert info["buffers"][0] == 0 and info["buffers"][1] < 1024, info
        assert net_guest.running.alive(), net_guest.running.log()
    finally:
        client.close()


def test_a_dhcp_server_that_never_answers_stops_the_demo_start_up_with_one_line(guest):
    """The session's guest has a NIC with nothing behind it (-nic none): its link is up, DHCP
    asks and nobody answers. `make run` types its demo line at the REPL (run.GUEST_DEMO) and
    fails as soon as the REPL is back, with the exception's line, not after waiting 60 s."""
    line = run.GUEST_DEMO.replace("lan.up()", "lan.up(timeout_ms=1500)")
    assert line != run.GUEST_DEMO
    # No address left from an earlier test (a static one outlives a soft reset): DHCP must ask.
    guest.exec("import network\nn = network.LAN()\nn.active(True)\nn.ifconfig(('0.0.0.0',) * 4)\n"
               "n.active(False)")
    started = time.monotonic()
    with pytest.raises(DeviceError) as failed:
        guest.start_in_repl(line, run.READY, timeout=60)
    assert time.monotonic() - started < 20
    assert ("the program ended before it printed %r: OSError: network: no IPv4 address after "
            "1500 ms: no DHCP server answered" % run.READY) in str(failed.value)
