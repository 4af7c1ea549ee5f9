"""netsec keygen: what it makes is checked with `cryptography`, and with openssl as a judge."""
import ipaddress
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certfactory import DAY, NOW, key, mode, run_netsec, write


def load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def sans_of(cert):
    return [name.value for name in ext(cert, x509.SubjectAlternativeName)]


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls).value


def openssl_verify(ca, cert, *options):
    return subprocess.run(["openssl", "verify", "-CAfile", str(ca), *options, str(cert)],
                          capture_output=True, text=True)


def test_default_identity_is_p256_with_sans_usages_and_validity(tmp_path, capsys):
    status, out, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "device.local",
                                  "--host", "192.168.1.20")
    assert status == 0, err
    ca, server = load_cert(tmp_path / "ca.pem"), load_cert(tmp_path / "server.pem")
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    assert server.public_key().curve.name == "secp256r1"
    assert server.signature_hash_algorithm.name == "sha256"
    san = ext(server, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["device.local"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("192.168.1.20")]
    assert list(ext(server, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ext(server, x509.BasicConstraints).ca is False
    assert ext(ca, x509.BasicConstraints).ca is True and ext(ca, x509.KeyUsage).key_cert_sign
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "device.local"
    assert 3649 <= (ca.not_valid_after_utc - NOW).days <= 3650
    assert 364 <= (server.not_valid_after_utc - NOW).days <= 365  # Mozilla intermediate: <= 366
    assert server.not_valid_before_utc <= NOW
    for cert in (ca, server):
        assert 0 < cert.serial_number < 2**128
    assert ca.serial_number != server.serial_number
    assert mode(tmp_path / "server-key.pem") == 0o600 and mode(tmp_path / "ca-key.pem") == 0o600
    assert mode(tmp_path / "server.pem") & 0o044  # certificates are public
    checked = openssl_verify(tmp_path / "ca.pem", tmp_path / "server.pem", "-purpose", "sslserver",
                             "-verify_hostname", "device.local")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "netsec convert --server-cert" in out  # tells the next step


def test_client_identity_has_client_auth_and_no_sans(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--client", "alice",
                                "--client", "bob")
    assert status == 0, err
    for name in ("alice", "bob"):
        cert = load_cert(tmp_path / (name + ".pem"))
        assert list(ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert cert.subject.rfc4514_string() == "CN=" + name
        assert mode(tmp_path / (name + "-key.pem")) == 0o600
        checked = openssl_verify(tmp_path / "ca.pem", tmp_path / (name + ".pem"),
                                 "-purpose", "sslclient")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not (tmp_path / "server.pem").exists()


@pytest.mark.parametrize("key_type, check", [
    ("ec-p384", lambda k: isinstance(k, ec.EllipticCurvePublicKey) and k.curve.name == "secp384r1"),
    ("rsa-2048", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 2048),
    ("rsa-3072", lambda k: isinstance(k, rsa.RSAPublicKey) and k.key_size == 3072),
])
def test_key_types(tmp_path, capsys, key_type, check):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "localhost",
                                "--key-type", key_type)
    assert status == 0, err
    assert check(load_cert(tmp_path / "server.pem").public_key())
    assert check(load_cert(tmp_path / "ca.pem").public_key())


def test_subject_fields_and_validity_are_settable(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "a.example",
                                "--cn", "Pump 7", "--ca-cn", "Plant CA", "--org", "ACME",
                                "--country", "DE", "--days", "90", "--ca-days", "400")
    assert status == 0, err
    ca, server = load_cert(tmp_path / "ca.pem"), load_cert(tmp_path / "server.pem")
    assert server.subject.rfc4514_string() == "CN=Pump 7,O=ACME,C=DE"
    assert ca.subject.rfc4514_string() == "CN=Plant CA,O=ACME,C=DE"
    assert 89 <= (server.not_valid_after_utc - NOW).days <= 90
    assert 399 <= (ca.not_valid_after_utc - NOW).days <= 400


def test_signs_with_an_existing_ca_and_encrypted_ca_key(tmp_path, capsys, monkeypatch):
    first = tmp_path / "first"
    assert run_netsec(capsys, "keygen", "-o", first, "--host", "localhost")[0] == 0
    ca_key = load_key(first / "ca-key.pem")
    encrypted = write(tmp_path / "ca-key-encrypted.pem", ca_key, password="s3cret")
    monkeypatch.setenv("NETSEC_KEY_PASSPHRASE", "s3cret")
    second = tmp_path / "second"
    status, _, err = run_netsec(capsys, "keygen", "-o", second, "--host", "other.local",
                                "--ca", first / "ca.pem", "--ca-key", encrypted)
    assert status == 0, err
    assert not (second / "ca.pem").exists()
    assert openssl_verify(first / "ca.pem", second / "server.pem").returncode == 0


def test_existing_ca_must_match_its_key(tmp_path, capsys):
    assert run_netsec(capsys, "keygen", "-o", tmp_path / "a", "--host", "localhost")[0] == 0
    other = write(tmp_path / "other-key.pem", key())
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "b", "--host", "localhost",
                                "--ca", tmp_path / "a" / "ca.pem", "--ca-key", other)
    assert status == 2
    assert err.startswith("netsec keygen: error: %s: this key does not belong to" % other)
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "b", "--host", "localhost",
                                "--ca", tmp_path / "a" / "ca.pem")
    assert status == 2 and "--ca and --ca-key go together" in err


def test_fleet_gives_every_device_its_own_directory_and_key(tmp_path, capsys):
    csv = tmp_path / "devices.csv"
    csv.write_text("name,hosts\n# spare units below\nsensor-01,sensor-01.local,192.168.1.51\n\n"
                   "sensor-02, sensor-02.local , 192.168.1.52\n")
    out = tmp_path / "out"
    status, _, err = run_netsec(capsys, "keygen", "-o", out, "--fleet", csv)
    assert status == 0, err
    keys = set()
    for n, name in enumerate(("sensor-01", "sensor-02"), 1):
        cert = load_cert(tmp_path / "out" / name / "server.pem")
        assert cert.subject.rfc4514_string() == "CN=" + name
        assert sans_of(cert) == ["%s.local" % name, ipaddress.ip_address("192.168.1.5%d" % n)]
        assert mode(tmp_path / "out" / name / "server-key.pem") == 0o600
        keys.add((tmp_path / "out" / name / "server-key.pem").read_bytes())
        checked = openssl_verify(out / "ca.pem", out / name / "server.pem")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(keys) == 2


@pytest.mark.parametrize("content, message", [
    ("sensor-01\n", "line 1: device 'sensor-01' has no DNS name or IP address"),
    ("a,a.local\nb,b.local\na,x.local\n", "line 3: device 'a' is listed twice"),
    ("../evil,evil.local\n", "line 1: '../evil' cannot name files"),
    ("a,not a host\n", "line 1: 'not a host' is not a DNS name or IP address"),
    ("# nothing\n", "lists no devices"),
])
def test_fleet_csv_errors_name_the_line(tmp_path, capsys, content, message):
    csv = tmp_path / "devices.csv"
    csv.write_text(content)
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "out", "--fleet", csv)
    assert status == 2
    assert err.startswith("netsec keygen: error: %s" % csv) and message in err
    assert not (tmp_path / "out").exists()


def test_never_overwrites_without_force(tmp_path, capsys):
    assert run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "localhost")[0] == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "localhost",
                                "--client", "alice")
    assert status == 2
    assert "already exists" in err and "--force" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # not even alice
    (tmp_path / "server-key.pem").chmod(0o644)
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "localhost", "--force")
    assert status == 0, err
    assert (tmp_path / "server-key.pem").read_bytes() != before["server-key.pem"]
    assert mode(tmp_path / "server-key.pem") == 0o600


@pytest.mark.parametrize("argv, message", [
    ([], "nothing to make"),
    (["--host", "bad_host!"], "--host: 'bad_host!' is not a DNS name or IP address"),
    (["--host", "localhost", "--days", "0"], "--days: must be at least 1 day"),
    (["--host", "localhost", "--country", "Germany"],
     "--country: 'Germany' is not a two-letter country code"),
    (["--client", "server"], "'server' cannot name files (reserved)"),
])
def test_bad_options_are_refused_in_one_line(tmp_path, capsys, argv, message):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "out", *argv)
    assert status == 2
    assert err.count("\n") == 1 and err.startswith("netsec keygen: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_wildcard_host(tmp_path, capsys):
    assert run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "*.plant.example")[0] == 0
    assert sans_of(load_cert(tmp_path / "server.pem")) == ["*.plant.example"]


def test_warns_when_the_ca_expires_before_the_leaf(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "localhost",
                                "--ca-days", "100")
    assert status == 0
    assert "netsec keygen: warning:" in err and "before the certificates it signs" in err
    assert NOW + 99 * DAY < load_cert(tmp_path / "ca.pem").not_valid_after_utc


def test_server_certificates_live_365_days_and_longer_ones_are_warned(tmp_path, capsys):
    # Mozilla's intermediate profile (sslyze checks it) allows a server certificate 366 days;
    # client certificates keep two years.
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--host", "device.local",
                                "--client", "alice")
    assert status == 0, err
    server, client = load_cert(tmp_path / "server.pem"), load_cert(tmp_path / "alice.pem")
    assert 364 <= (server.not_valid_after_utc - NOW).days <= 365
    assert 729 <= (client.not_valid_after_utc - NOW).days <= 730
    assert "warning" not in err
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "long", "--host",
                                "device.local", "--days", "730")
    assert status == 0 and "warning: --days: server certificates valid for 730 days: " \
        "Mozilla's intermediate TLS profile allows at most 366" in err


def test_psk_files_hold_an_identity_and_32_random_bytes(tmp_path, capsys):
    status, out, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--psk", "sensor-1",
                                  "--psk", "gateway")
    assert status == 0, err
    texts = [(tmp_path / n).read_text() for n in ("sensor-1.psk", "gateway.psk")]
    identity, key = texts[0].strip().split(":")
    assert identity == "sensor-1" and len(bytes.fromhex(key)) == 32
    assert texts[1].split(":")[1] != key  # a fresh key each
    assert mode(tmp_path / "sensor-1.psk") == 0o600
    assert not (tmp_path / "ca.pem").exists()  # a PSK needs no CA
