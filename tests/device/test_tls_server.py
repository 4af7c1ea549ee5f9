"""netsec.tls server contexts on the unix image against real TLS clients (CPython ssl, openssl):
client-certificate modes, revocation, the cipher policy, and credentials rotated on "flash"
while the server runs (every rotation test on the networked QEMU guest too)."""
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

import certfactory as pki
from harness import CERTS, require_tool
from mpy import HELLO_SERVER, OVERRIDE_DIR, write_credentials
from targets import UnixTarget

pytestmark = pytest.mark.device



@pytest.fixture(scope="module")
def pki_set():
    server_ca = pki.ca("Server CA")
    client_ca = pki.ca("Client CA")
    other_ca = pki.ca("Other CA")
    return {
        "server_ca": server_ca,
        "server": pki.leaf(server_ca, hosts=("localhost",)),
        "client_ca": client_ca,
        "client": pki.leaf(client_ca, hosts=(), cn="client-1", usage=pki.CLIENT_AUTH),
        "revoked": pki.leaf(client_ca, hosts=(), cn="client-2", usage=pki.CLIENT_AUTH),
        "intruder": pki.leaf(other_ca, hosts=(), cn="intruder", usage=pki.CLIENT_AUTH),
    }


def credentials(flash, pki_set, **fields):
    """The device's identity from pki_set (server), plus the given fields."""
    cert, key = pki_set["server"]
    values = {"SERVER_CERT": pki.der(cert), "SERVER_KEY": pki.der(key), "TEST_ONLY": False,
              "CLIENT_CAS": (pki.der(pki_set["client_ca"][0]),)}
    values.update(fields)
    return write_credentials(flash, **values)


class Device:
    """SERVER on the image, started once its flash is ready; connect() is a CPython ssl client."""

    def __init__(self, target, tmp_path, pki_set, client_auth):
        self.target, self.client_auth = target, client_auth
        self.tmp_path = tmp_path
        self.flash = tmp_path / "flash"
        self.server_ca = pki.write(tmp_path / "server-ca.pem", pki_set["server_ca"][0])
        self.mp = self.port = None

    def start(self):
        listen, self.port = self.target.listen_ports(443)
        self.mp = self.target.program(HELLO_SERVER, self.flash,
                                      [listen, self.client_auth, self.target.listen_host])
        self.mp.expect("ready ")
        return self

    def replace(self, path, data):
        """Replace a file on the device's flash while the server runs (the target's way);
        path: relative to the flash, or a path inside self.flash."""
        self.target.replace(self.mp, self.flash, self._on_flash(path), data, ready="ready ")

    def remove(self, path):
        """Remove a file from the device's flash while the server runs (the target's way)."""
        self.target.remove(self.mp, self.flash, self._on_flash(path), ready="ready ")

    def _on_flash(self, path):
        path = Path(path)
        return path.relative_to(self.flash) if path.is_absolute() else path

    def connect(self, identity=None):
        """Send a line with identity=(cert, key) (or none); the reply, or the ssl error."""
        ctx = ssl.create_default_context(cafile=self.server_ca)
        if identity:
            cert, key = identity
            ctx.load_cert_chain(pki.write(self.tmp_path / "c.pem", cert),
                                pki.write(self.tmp_path / "c-key.pem", key))
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=20) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
                    conn.sendall(b"hi\n")
                    return conn.makefile("rb").readline().decode().strip()
        except (OSError, ssl.SSLError) as e:
            return e

    def expect(self, prefix):
        return self.mp.expect(prefix)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.mp:
            self.mp.stop()


@pytest.fixture
def device(unix_image, tmp_path, pki_set, request):
    """The device server with pki_set's credentials, client_auth from the test's parameter."""
    dev = Device(UnixTarget(unix_image), tmp_path, pki_set, request.param)
    credentials(dev.flash, pki_set)
    with dev:
        yield dev.start()


LINE = "INFO server TLSv1.3 TLS1-3-AES-256-GCM-SHA384 "


# --- client_auth="required" ----------------------------------------------------------------------

@pytest.mark.parametrize("device", ["required"], indirect=True)
def test_required_rejects_a_client_without_a_certificate(device):
    assert isinstance(device.connect(), ssl.SSLError)
    assert device.expect("refused") == (
        "refused no_client_cert the client sent no certificate, but this server requires one "
        "(client_auth='required')")


@pytest.mark.parametrize("device", ["required"], indirect=True)
def test_required_rejects_a_certificate_from_another_ca(device, pki_set):
    assert isinstance(device.connect(pki_set["intruder"]), ssl.SSLError)
    assert device.expect("refused") == (
        "refused unknown_ca client certificate CN=intruder (issued by CN=Other CA) is not signed "
        "by a CA in CLIENT_CAS")


@pytest.mark.parametrize("device", ["required"], indirect=True)
def test_required_accepts_a_good_client_and_logs_its_subject(device, pki_set):
    assert device.connect(pki_set["client"]) == "hello CN=client-1"
    assert device.expect("INFO server") == LINE + "VERIFIED peer=CN=client-1"


def test_required_accepts_a_self_signed_client_listed_in_client_cas(unix_image, tmp_path, pki_set):
    ca_cert, ca_key = pki.ca("sensor-9")  # self-signed, used directly as the client's identity
    dev = Device(UnixTarget(unix_image), tmp_path, pki_set, "required")
    credentials(dev.flash, pki_set, CLIENT_CAS=(pki.der(ca_cert),))
    with dev:
        dev.start()
        assert dev.connect((ca_cert, ca_key)) == "hello CN=sensor-9"
        assert dev.expect("INFO server") == LINE + "VERIFIED peer=CN=sensor-9"


# --- client_auth="optional" ------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["optional"], indirect=True)
def test_optional_accepts_both_and_logs_which(device, pki_set):
    assert device.connect() == "hello anonymous"
    assert device.expect("INFO server") == (
        LINE + "no client certificate (client_auth=optional) peer=none")
    # A certificate that is presented must verify (firmware/patches/0005-*): then it is VERIFIED.
    assert device.connect(pki_set["client"]) == "hello CN=client-1"
    assert device.expect("INFO server") == LINE + "VERIFIED peer=CN=client-1"


# --- revocation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("client_auth", ["required", "optional"])
def test_a_revoked_client_certificate_is_rejected(unix_image, tmp_path, pki_set, client_auth):
    revoked, _ = pki_set["revoked"]
    dev = Device(UnixTarget(unix_image), tmp_path, pki_set, client_auth)
    credentials(dev.flash, pki_set, REVOKED={
        revoked.issuer.public_bytes(): (12345, revoked.serial_number)})
    with dev:
        dev.start()
        assert isinstance(dev.connect(pki_set["revoked"]), ssl.SSLError)
        assert dev.expect("refused") == (
            "refused revoked client certificate CN=client-2 (serial 0x%x, issued by CN=Client CA) "
            "is revoked (REVOKED in Net_Security)" % revoked.serial_number)
        # The CA's other certificates are still good.
        assert dev.connect(pki_set["client"]) == "hello CN=client-1"


# --- cipher policy ---------------------------------------------------------------------------------

@pytest.mark.parametrize("suite, refused", [("ECDHE-ECDSA-AES128-SHA", True),
                                            ("ECDHE-ECDSA-AES256-SHA384", True),
                                            ("ECDHE-ECDSA-AES256-GCM-SHA384", False)])
def test_openssl_offering_only_a_weak_suite_is_refused(unix_image, tmp_path, pki_set, suite, refused):
    openssl = require_tool("openssl")
    dev = Device(UnixTarget(unix_image), tmp_path, pki_set, "none")
    credentials(dev.flash, pki_set)
    with dev:
        dev.start()
        client = subprocess.run(
            [openssl, "s_client", "-connect", "127.0.0.1:%d" % dev.port, "-tls1_2",
             "-cipher", suite, "-CAfile", dev.server_ca, "-verify_return_error", "-ign_eof"],
            input="hi\n", capture_output=True, text=True, timeout=30)
        if refused:
            assert "alert handshake failure" in client.stdout + client.stderr
            assert dev.expect("refused").startswith(
                "refused no_common_cipher handshake failed: the peer offered no cipher suite")
        else:  # the control: a suite of the policy
            assert "hello anonymous" in client.stdout, client.stdout + client.stderr
            assert dev.expect("INFO server") == (
                "INFO server TLSv1.2 TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384 client certificate "
                "not requested (client_auth=none) peer=none")


# --- rotation on flash, no restart -----------------------------------------------------------------

def test_rollover_old_and_new_ca_then_old_removed(target, tmp_path, pki_set):
    old_ca, new_ca = pki.ca("Client CA 2025"), pki.ca("Client CA 2026")
    old_client = pki.leaf(old_ca, hosts=(), cn="old-client", usage=pki.CLIENT_AUTH)
    new_client = pki.leaf(new_ca, hosts=(), cn="new-client", usage=pki.CLIENT_AUTH)
    dev = Device(target, tmp_path, pki_set, "required")
    override = credentials(dev.flash, pki_set, CLIENT_CAS=(pki.der(old_ca[0]), pki.der(new_ca[0])))
    with dev:
        dev.start()
        assert dev.connect(old_client) == "hello CN=old-client"
        assert dev.connect(new_client) == "hello CN=new-client"
        # Net_Security.py on flash replaced while the server runs: only the new CA is left.
        both, new_only = (pki.der(old_ca[0]), pki.der(new_ca[0])), (pki.der(new_ca[0]),)
        text = override.read_text().replace(repr(both), repr(new_only))
        assert text != override.read_text()
        dev.replace(override, text.encode())
        assert isinstance(dev.connect(old_client), ssl.SSLError)
        assert dev.expect("refused") == (
            "refused unknown_ca client certificate CN=old-client (issued by CN=Client CA 2025) is "
            "not signed by a CA in CLIENT_CAS")
        assert dev.connect(new_client) == "hello CN=new-client"
        assert target.running(dev.mp)
    # Said only by a server that still held the old credentials (see the rotation test below).
    assert "INFO tls: new credentials from %s/ in use for new connections" % OVERRIDE_DIR \
        in dev.mp.output


def test_rollover_with_der_files(target, tmp_path, pki_set):
    old_ca, new_ca = pki.ca("Client CA 2025"), pki.ca("Client CA 2026")
    old_client = pki.leaf(old_ca, hosts=(), cn="old-client", usage=pki.CLIENT_AUTH)
    new_client = pki.leaf(new_ca, hosts=(), cn="new-client", usage=pki.CLIENT_AUTH)
    dev = Device(target, tmp_path, pki_set, "required")
    credentials(dev.flash, pki_set)
    folder = dev.flash / OVERRIDE_DIR
    with dev:
        dev.start()
        assert isinstance(dev.connect(new_client), ssl.SSLError)
        dev.expect("refused unknown_ca")
        # Copied in while it runs: both CAs trusted, the DER files replacing Net_Security's list.
        dev.replace(folder / "CLIENT_CAS-2025.der", pki.der(old_ca[0]))
        dev.replace(folder / "CLIENT_CAS-2026.der", pki.der(new_ca[0]))
        assert dev.connect(old_client) == "hello CN=old-client"
        assert dev.connect(new_client) == "hello CN=new-client"
        dev.remove(folder / "CLIENT_CAS-2025.der")
        assert isinstance(dev.connect(old_client), ssl.SSLError)
        dev.expect("refused unknown_ca")
        assert dev.connect(new_client) == "hello CN=new-client"


@pytest.mark.parametrize("corruption", ["truncated DER", "PEM instead of DER", "broken Python",
                                        "wrong FORMAT"])
def test_a_corrupt_replacement_leaves_the_old_credentials_in_force(target, tmp_path, pki_set,
                                                                   corruption):
    new_ca = pki.ca("Client CA 2026")
    dev = Device(target, tmp_path, pki_set, "required")
    override = credentials(dev.flash, pki_set)
    folder = dev.flash / OVERRIDE_DIR
    with dev:
        dev.start()
        assert dev.connect(pki_set["client"]) == "hello CN=client-1"
        if corruption == "truncated DER":
            dev.replace(folder / "CLIENT_CAS.der", pki.der(new_ca[0])[:-40])
        elif corruption == "PEM instead of DER":
            dev.replace(folder / "CLIENT_CAS.der", pki.pem(new_ca[0]))
        elif corruption == "broken Python":
            dev.replace(override, override.read_bytes().replace(b"CLIENT_CAS = (", b"CLIENT_CAS = (("))
        else:
            dev.replace(override, override.read_bytes().replace(b"FORMAT = 1", b"FORMAT = 2"))
        assert dev.connect(pki_set["client"]) == "hello CN=client-1"
        error = dev.expect("ERROR tls: refused the new credentials in %s/" % OVERRIDE_DIR)
        assert error.endswith("; the previous ones stay in use")
        assert dev.connect(pki_set["client"]) == "hello CN=client-1"
    expected = {"truncated DER": "CLIENT_CAS (%s/CLIENT_CAS.der) is not a DER certificate"
                                 % OVERRIDE_DIR,
                "PEM instead of DER": "CLIENT_CAS (%s/CLIENT_CAS.der) is PEM; the device reads DER"
                                      % OVERRIDE_DIR,
                "broken Python": "%s/Net_Security.py: SyntaxError" % OVERRIDE_DIR,
                "wrong FORMAT": "%s/Net_Security.py has FORMAT 2, this firmware reads FORMAT 1"
                                % OVERRIDE_DIR}[corruption]
    assert expected in error
    assert dev.mp.output.count("ERROR tls: refused") == 1, "reported once, not per connection"


def test_server_certificate_rotation_refuses_a_key_of_another_certificate(target, tmp_path,
                                                                          pki_set):
    new_cert, new_key = pki.leaf(pki_set["server_ca"], hosts=("localhost",), cn="localhost-2026")
    other_cert, other_key = pki.leaf(pki_set["server_ca"], hosts=("localhost",), cn="other")
    dev = Device(target, tmp_path, pki_set, "none")
    credentials(dev.flash, pki_set)
    with dev:
        dev.start()
        assert served_subject(dev) == "CN=localhost"
        # Copied first: its key is not there yet.
        dev.replace(OVERRIDE_DIR + "/SERVER_CERT.der", pki.der(new_cert))
        assert served_subject(dev) == "CN=localhost"
        error = dev.expect("ERROR tls: refused the new credentials")
        assert ("SERVER_KEY (%s/Net_Security.py) does not belong to SERVER_CERT (%s/SERVER_CERT.der)"
                % (OVERRIDE_DIR, OVERRIDE_DIR)) in error
        dev.replace(OVERRIDE_DIR + "/SERVER_KEY.der", pki.der(other_key))  # the wrong key
        assert served_subject(dev) == "CN=localhost"
        dev.replace(OVERRIDE_DIR + "/SERVER_KEY.der", pki.der(new_key))  # the right one
        assert served_subject(dev) == "CN=localhost-2026"
        assert target.running(dev.mp)
    # Only a server that still held the old credentials says so: no restart on unix, and on
    # the guest no reboot or soft reset (the program started again in the same interpreter).
    assert "INFO tls: new credentials from %s/ in use for new connections" % OVERRIDE_DIR \
        in dev.mp.output


def served_subject(dev):
    """The subject of the certificate the device serves (verified by the client)."""
    ctx = ssl.create_default_context(cafile=dev.server_ca)
    with socket.create_connection(("127.0.0.1", dev.port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as conn:
            subject = dict(part[0] for part in conn.getpeercert()["subject"])
            conn.sendall(b"hi\n")
            conn.makefile("rb").readline()
    return "CN=" + subject["commonName"]


def test_a_broken_override_at_boot_falls_back_to_the_frozen_credentials(unix_image, tmp_path,
                                                                        pki_set):
    dev = Device(UnixTarget(unix_image), tmp_path, pki_set, "none")
    credentials(dev.flash, pki_set, FORMAT=2)
    dev.server_ca = str(CERTS / "ca.pem")  # the frozen identity's CA
    with dev:
        dev.start()
        assert served_subject(dev) == "CN=localhost"
        assert dev.connect() == "hello anonymous"
    assert ("ERROR tls: refused the credentials in %s/: %s/Net_Security.py has FORMAT 2, this "
            "firmware reads FORMAT 1: regenerate it with `netsec convert`; using the frozen "
            "Net_Security" % (OVERRIDE_DIR, OVERRIDE_DIR)) in dev.mp.output
