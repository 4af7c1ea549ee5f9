"""The hardware layer: the same tests on any board with MicroPython and netsec, through its serial
port, or on the QEMU image through its pty as a board stand-in.

    make test-hw DEVICE=/dev/ttyACM0 [DEVICE_IP=192.168.1.70]

DEVICE: the board's serial port; without it the networked QEMU Cortex-M3 image is booted and
used. DEVICE_IP: the address of a board whose network is up (its boot.py joined the Wi-Fi or the
Ethernet); the network tests (test_network.py) need it on a board, and are not collected without
it (the run's header says so). The QEMU stand-in always has its network.
"""
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from netsec_cli import qemu
from netsec_cli.device import Device, DeviceError

DEVICE = os.environ.get("DEVICE")
DEVICE_IP = os.environ.get("DEVICE_IP")
NETSEC = Path(sys.executable).parent / "netsec"
CREDENTIALS = "netsec-credentials/Net_Security.py"  # where netsec deploy puts a module
BOARD_HTTPS_PORT = 443  # where netsec.demo listens on a board
GUEST_RELAY_PORT = 465  # the QEMU guest's way to the host's relay: GUEST_SERVICES:465

collect_ignore = [] if DEVICE_IP or not DEVICE else ["test_network.py"]


def pytest_report_header():
    board = DEVICE or "the networked QEMU Cortex-M3 image (a board stand-in; DEVICE=/dev/tty... " \
                      "for a board)"
    if DEVICE and not DEVICE_IP:
        return "hardware layer on %s; network tests not collected: give DEVICE_IP, the board's " \
               "address" % board
    return "hardware layer on %s; network tests%s" % (board, " against " + DEVICE_IP
                                                      if DEVICE_IP else "")


@dataclass
class Link:
    """How the host and the board reach each other.

    https: (address, port) on which the host reaches the board's port BOARD_HTTPS_PORT; names:
    what the board's certificate must be valid for; relay_bind: (address, port) where the test's
    relay listens on the host; relay_for_board: (address, port) the board connects to for it.
    """
    https: tuple
    names: tuple
    relay_bind: tuple
    relay_for_board: tuple


@pytest.fixture(scope="session")
def link(board):
    if isinstance(board, qemu.Guest):
        relay_port = board.network.guestfwd[GUEST_RELAY_PORT]
        return Link(("127.0.0.1", board.host_port(BOARD_HTTPS_PORT)), ("localhost", "127.0.0.1"),
                    ("127.0.0.1", relay_port), (qemu.GUEST_SERVICES, GUEST_RELAY_PORT))
    assert DEVICE_IP, "the network tests need DEVICE_IP, the board's address"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((DEVICE_IP, BOARD_HTTPS_PORT))  # UDP: picks the route, sends nothing
        host_ip = probe.getsockname()[0]
    relay = (host_ip, qemu.free_port())
    return Link((DEVICE_IP, BOARD_HTTPS_PORT), (DEVICE_IP,), relay, relay)


@pytest.fixture(scope="session")
def board(request, tmp_path_factory):
    """The board (or the QEMU stand-in), its raw REPL held; other programs may open the port."""
    try:
        if DEVICE:
            connected = Device(DEVICE, exclusive=False)
        else:
            network = qemu.GuestNetwork(hostfwd={BOARD_HTTPS_PORT: 0},
                                        guestfwd={GUEST_RELAY_PORT: qemu.free_port()})
            connected = qemu.Guest(request.getfixturevalue("qemu_image"), network=network,
                                   log_path=tmp_path_factory.mktemp("hw") / "qemu.log")
            connected.exec("from netsec import lan\nlan.up()")
        failure = None
    except (DeviceError, qemu.QemuError) as e:
        failure = str(e)
    if failure:
        pytest.fail(failure, pytrace=False)
    yield connected
    if DEVICE:
        connected.close()
    else:
        connected.stop()


@pytest.fixture(scope="session")
def clock_set(board):
    """The board's RTC set to UTC from this machine's clock (certificate dates need it)."""
    return board.set_rtc_utc()


def netsec(*argv):
    """Run the installed netsec console script; what it printed. Fails the test if it fails."""
    result = subprocess.run([str(NETSEC)] + [str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=300)
    assert result.returncode == 0, "netsec %s failed:\n%s" % (" ".join(map(str, argv)),
                                                               result.stdout)
    return result.stdout


class Identity:
    """A CA and a server identity made by netsec keygen, in a Net_Security.py by netsec convert.

    .module, .ca_pem, .cert_pem, .key_pem: paths; .ca_der: the CA as DER; .subject: the
    server certificate's subject.
    """

    def __init__(self, folder, hosts, email_server_ca=None):
        cn = "%s.hw.netsec.test" % folder.name
        host_args = [a for h in hosts for a in ("--host", h)]
        netsec("keygen", "-o", folder, *host_args, "--cn", cn,
               "--ca-cn", "netsec hw test CA %s" % folder.name)
        self.ca_pem, self.cert_pem = folder / "ca.pem", folder / "server.pem"
        self.key_pem, self.module = folder / "server-key.pem", folder / "Net_Security.py"
        extra = ["--email-server-ca", email_server_ca] if email_server_ca else []
        netsec("convert", "--server-cert", self.cert_pem, "--server-key", self.key_pem,
               "--ca", self.ca_pem, *host_args, *extra, "-o", self.module)
        self.ca_der = x509.load_pem_x509_certificate(self.ca_pem.read_bytes()).public_bytes(
            Encoding.DER)
        self.subject = "CN=" + cn


@pytest.fixture(scope="session")
def identity(tmp_path_factory):
    """identity(name, hosts=("localhost",), email_server_ca=None): a new Identity."""
    def make(name, hosts=("localhost",), email_server_ca=None):
        return Identity(tmp_path_factory.mktemp(name), list(hosts), email_server_ca)
    return make


@pytest.fixture(scope="module")
def deploy(board):
    """deploy(identity): `netsec deploy` of its module to the board, this run's hold on the port
    set aside meanwhile. What netsec-credentials/Net_Security.py held before is put back after
    the test module (a real board may hold its owner's credentials)."""
    before = board.read(CREDENTIALS) if board.eval(
        "'Net_Security.py' in __import__('os').listdir('netsec-credentials') "
        "if 'netsec-credentials' in __import__('os').listdir() else False") else None

    def run(identity):
        with board.released():
            return netsec("deploy", identity.module, "--device", board.port)

    yield run
    if before is None:
        board.exec("import os\ntry:\n    os.remove(%r)\nexcept OSError:\n    pass" % CREDENTIALS)
    else:
        board.write_atomic(CREDENTIALS, before)
    board.soft_reset()  # netsec.tls forgets what it loaded
