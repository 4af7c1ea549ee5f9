"""UDP over lwIP: DNS and SNTP (netsec.clock.sync) from the QEMU Cortex-M3 guest.

QEMU's restricted user network forwards no UDP from the guest (guestfwd is TCP only), so this
test makes a network namespace with nothing but a loopback (name with this helper and pid),
runs QEMU in it unrestricted (netsec_cli.qemu.GuestNetwork(netns=...)), and serves DNS and SNTP
on that namespace's 127.0.0.1: the guest reaches them as 10.0.2.3 (QEMU's DNS proxy, which asks
the namespace's resolv.conf) and 10.0.2.2. Nothing can leave the machine from there.
"""
import ctypes
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import require_tool
from netsec_cli import qemu

CLONE_NEWNET = 0x40000000
TIME_NAME = "time.netsec.test"
# What the SNTP server says: a fixed instant well away from the host's clock, so the guest's
# clock can only show it if the sync worked.
SERVED_UNIX = 2000000000  # 2033-05-18T03:33:20Z
NTP_TO_UNIX = 2208988800


@pytest.fixture
def netns():
    """A network namespace with only a loopback, and a resolv.conf naming its 127.0.0.1."""
    ip = require_tool("ip", "run `make deps` (it installs Debian's iproute2)")
    name = "netsec-lwip-%d" % os.getpid()
    subprocess.run([ip, "netns", "add", name], check=True)
    etc = Path("/etc/netns") / name
    try:
        subprocess.run([ip, "netns", "exec", name, ip, "link", "set", "lo", "up"], check=True)
        etc.mkdir(parents=True)
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        yield name
    finally:
        shutil.rmtree(etc, ignore_errors=True)
        subprocess.run([ip, "netns", "delete", name])


def udp_socket_in(netns, port):
    """A UDP socket bound to 127.0.0.1:port inside the namespace (made by a thread that
    entered it: a socket stays in the namespace it was made in)."""
    made = {}

    def make():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/var/run/netns/%s" % netns, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                made["error"] = OSError(ctypes.get_errno(), "setns")
                return
        finally:
            os.close(fd)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        made["sock"] = sock

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if "error" in made:
        raise made["error"]
    return made["sock"]


def dns_answer(query):
    """An answer to a DNS query (RFC 1035): TIME_NAME is 10.0.2.2, every other name NXDOMAIN."""
    ident, = struct.unpack(">H", query[:2])
    end = 12
    labels = []
    while query[end]:
        labels.append(query[end + 1:end + 1 + query[end]].decode())
        end += 1 + query[end]
    question = query[12:end + 5]
    known = ".".join(labels) == TIME_NAME and query[end + 1:end + 3] == b"\x00\x01"
    header = struct.pack(">HHHHHH", ident, 0x8180 if known else 0x8183, 1, 1 if known else 0, 0, 0)
    answer = struct.pack(">HHHIH4s", 0xC00C, 1, 1, 60, 4, bytes([10, 0, 2, 2])) if known else b""
    return header + question + answer


def sntp_answer(request):
    """An SNTP server reply (RFC 4330): stratum 1, SERVED_UNIX, the client's timestamp echoed."""
    now = struct.pack(">II", SERVED_UNIX + NTP_TO_UNIX, 0)
    return (bytes([0x24, 1, 6, 0xEC]) + bytes(8) + b"TEST" + now + request[40:48] + now + now)


def serve(sock, answer, log):
    def run():
        while True:
            try:
                data, peer = sock.recvfrom(512)
            except OSError:
                return
            log.append(data)
            sock.sendto(answer(data), peer)
    threading.Thread(target=run, daemon=True).start()


def test_dns_and_sntp_over_lwip_set_the_guests_clock(qemu_image, netns, tmp_path):
    dns_sock, sntp_sock = udp_socket_in(netns, 53), udp_socket_in(netns, 123)
    queries, requests = [], []
    serve(dns_sock, dns_answer, queries)
    serve(sntp_sock, sntp_answer, requests)
    guest = qemu.Guest(qemu_image, log_path=tmp_path / "qemu.log",
                       network=qemu.GuestNetwork(netns=netns))
    try:
        out = guest.exec(
            "import network, socket, time\n"
            "from netsec import lan, clock\n"
            "print('lan', lan.up())\n"
            "print('dns', network.LAN().ifconfig()[3])\n"
            "print('resolved', socket.getaddrinfo(%r, 123)[0][-1])\n"
            "try:\n"
            "    socket.getaddrinfo('nowhere.netsec.test', 123)\n"
            "except OSError as e:\n"
            "    print('unknown name:', e)\n"
            "print('synced', clock.sync(%r))\n"
            "print('utc', clock.utc())\n" % (TIME_NAME, TIME_NAME), timeout=60)
    finally:
        dns_sock.close()
        sntp_sock.close()
        guest.stop()
    assert "lan ('10.0.2.15', '255.255.255.0')" in out and "dns 10.0.2.3" in out, out
    assert "resolved ('10.0.2.2', 123)" in out, out
    assert "unknown name: -2" in out  # lwIP's getaddrinfo: EAI_NONAME as a negative errno
    assert "synced %d" % SERVED_UNIX in out, out
    assert "utc (2033, 5, 18, 3, 33, 2" in out, out
    assert queries and len(requests) == 1


def test_secrets_come_from_the_entropy_source(guest):
    """SNTP nonces, password salts and MIME tokens use os.urandom: the image has it (from the
    board's entropy source, the one mbedTLS seeds from), and it does not repeat itself."""
    out = guest.exec(
        "import os\n"
        "from netsec.server import hash_password\n"
        "print(len(os.urandom(16)), os.urandom(8) != os.urandom(8))\n"
        "print(hash_password('pw') != hash_password('pw'))\n")
    assert out.split() == ["16", "True", "True"], out
