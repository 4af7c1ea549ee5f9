"""netsec inspect: modules written by convert, and PEM/DER files, for people and machines."""
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes

import certfactory as cf
from certfactory import CLIENT_AUTH, DAY, NOW, run_netsec, write

ROOT = Path(__file__).resolve().parents[2]


def make_module(tmp_path, capsys, *extra):
    root = cf.ca("Root CA")
    server = cf.leaf(root, hosts=("device.local", "10.0.0.7"))
    files = [
        write(tmp_path / "root.pem", root[0]),
        write(tmp_path / "s.pem", server[0]),
        write(tmp_path / "k.pem", server[1])
    ]
    crl = write(tmp_path / "root.crl", cf.crl(root, [0xabc, 0x10]))
    out = tmp_path / "Net_Security.py"
    status, _, err = run_netsec(capsys, "convert", "--server-cert", files[1], "--server-key",
                                files[2], "--ca", files[0], "--client-ca", files[0], "--crl", crl,
                                "-o", out, *extra)
    assert status == 0, err
    return out, root, server


def test_module_as_text(tmp_path, capsys):
    out, root, server = make_module(tmp_path, capsys)
    status, text, err = run_netsec(capsys, "inspect", out)
    assert status == 0, err
    assert text.startswith("%s: FORMAT 1\n" % out)
    assert ("\nSERVER_CERT\n  subject   CN=device.local\n"
            "  SANs      DNS:device.local, IP:10.0.0.7\n  issuer    CN=Root CA\n") in text
    assert "(364 days left)" in text or "(365 days left)" in text
    assert "  sha256    %s" % server[0].fingerprint(hashes.SHA256()).hex() in text
    assert "\nCLIENT_CAS[0]\n  subject   CN=Root CA\n" in text
    assert "SERVER_KEY: EC P-256 key, matches SERVER_CERT" in text
    assert "revoked serials\n  CN=Root CA: 10, abc" in text
    assert "warnings" not in text


def test_module_as_json(tmp_path, capsys):
    out, root, server = make_module(tmp_path, capsys)
    status, text, _ = run_netsec(capsys, "inspect", "--json", out)
    assert status == 0
    report = json.loads(text)
    assert report["format"] == 1 and report["test_only"] is False and report["warnings"] == []
    names = [c["name"] for c in report["certificates"]]
    assert names == ["SERVER_CERT", "SERVER_CA", "CLIENT_CAS[0]"]
    first = report["certificates"][0]
    assert first["sans"] == ["DNS:device.local", "IP:10.0.0.7"] and first["key"] == "EC P-256"
    assert first["serial"] == "%x" % server[0].serial_number and first["days_left"] in (364, 365)
    assert report["keys"] == [{"name": "SERVER_KEY", "key": "EC P-256", "matches": "SERVER_CERT"}]
    assert report["revoked"] == [{"issuer": "CN=Root CA", "serials": ["10", "abc"]}]


def test_default_module_warns_it_is_the_public_test_credentials(capsys):
    status, text, _ = run_netsec(capsys, "inspect", ROOT / "modules" / "Net_Security.py")
    assert status == 0
    assert "FORMAT 1, TEST_ONLY" in text
    assert "PUBLIC default test credentials" in text.split("warnings")[1]


def test_module_warnings_for_expiring_and_mismatched(tmp_path, capsys):
    root = cf.ca("Root CA")
    soon = cf.leaf(root, not_after=NOW + 10 * DAY)
    module = tmp_path / "Net_Security.py"
    module.write_text("FORMAT = 2\nSERVER_CERT = %r\nSERVER_KEY = %r\nCLIENT_CAS = (%r,)\n" %
                      (cf.der(soon[0]), cf.der(cf.key()), cf.der(root[0])))
    status, text, _ = run_netsec(capsys, "inspect", "--json", module)
    assert status == 0
    warnings = json.loads(text)["warnings"]
    assert any("FORMAT is 2" in w for w in warnings)
    assert any(w.startswith("SERVER_CERT (CN=localhost) expires in") for w in warnings)
    assert "SERVER_KEY does not match SERVER_CERT" in warnings


def test_module_is_read_as_data_never_run(tmp_path, capsys):
    marker = tmp_path / "ran"
    module = tmp_path / "Net_Security.py"
    module.write_text("import os\nos.system('touch %s')\nFORMAT = 1\n" % marker)
    status, text, _ = run_netsec(capsys, "inspect", module)
    assert status == 0 and "FORMAT 1" in text
    assert not marker.exists()
    module.write_text("FORMAT = 1\nSERVER_CERT = open('/etc/passwd', 'rb').read()\n")
    status, _, err = run_netsec(capsys, "inspect", module)
    assert status == 2
    assert err == "netsec inspect: error: %s line 2: SERVER_CERT is not a plain constant — " \
                  "give a Net_Security.py written by netsec convert\n" % module


def test_module_with_damaged_der(tmp_path, capsys):
    module = tmp_path / "Net_Security.py"
    module.write_text("FORMAT = 1\nCLIENT_CAS = (b'0\\x82 nonsense',)\n")
    status, _, err = run_netsec(capsys, "inspect", module)
    assert status == 2 and "CLIENT_CAS[0] is not a DER certificate" in err


def test_module_with_info_of_the_wrong_type(tmp_path, capsys):
    module = tmp_path / "Net_Security.py"
    module.write_text("FORMAT = 1\nINFO = None\n")
    assert run_netsec(capsys, "inspect", module)[0] == 0  # no INFO at all is fine
    module.write_text("FORMAT = 1\nINFO = 'x'\n")
    status, _, err = run_netsec(capsys, "inspect", module)
    assert status == 2 and "INFO is a str, not a dict" in err and "Traceback" not in err


def test_pem_files(tmp_path, capsys):
    root = cf.ca("Root CA")
    server = cf.leaf(root)
    client = cf.leaf(root, hosts=(), usage=CLIENT_AUTH, cn="alice", not_before=NOW - 500 * DAY,
                     not_after=NOW - DAY)
    stray_key = write(tmp_path / "stray.pem", cf.key("rsa1024"))
    bundle = write(tmp_path / "bundle.pem", server[0], server[1], client[0], root[0],
                   cf.crl(root, [1, 2], next_update=NOW - DAY))
    status, text, err = run_netsec(capsys, "inspect", "--json", bundle, stray_key)
    assert status == 0, err
    report = json.loads(text)
    assert [c["subject"]
            for c in report["certificates"]] == ["CN=localhost", "CN=alice", "CN=Root CA"]
    assert report["certificates"][0]["name"] == bundle + " block 1 (line 1)"
    assert report["keys"][0]["matches"] == report["certificates"][0]["name"]
    assert report["keys"][1] == {
        "name": stray_key + " block 1 (line 1)",
        "key": "RSA 1024",
        "matches": None
    }
    assert report["revoked"][0]["issuer"] == "CN=Root CA" and report["revoked"][0]["serials"] == [
        "1", "2"
    ]
    warnings = "\n".join(report["warnings"])
    assert "(CN=alice) is expired on" in warnings
    assert "RSA 1024 key, which the firmware cannot use" in warnings
    assert "matches none of the certificates given" in warnings
    assert "past its nextUpdate" in warnings


def test_a_module_is_inspected_alone(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "inspect", tmp_path / "a.py", tmp_path / "b.pem")
    assert status == 2 and "a module is inspected on its own" in err


def test_psk_table_shows_identities_and_fingerprints_never_keys(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path, "--psk", "sensor-1",
                                "--psk", "gateway")
    assert status == 0, err
    module = tmp_path / "Net_Security.py"
    status, out, err = run_netsec(capsys, "convert", "--psk", tmp_path / "sensor-1.psk",
                                  "--psk", tmp_path / "gateway.psk", "-o", module)
    assert status == 0 and "PSK sensor-1, gateway" in out, err
    keys = [(tmp_path / n).read_text().strip().split(":")[1] for n in ("sensor-1.psk", "gateway.psk")]
    status, out, err = run_netsec(capsys, "inspect", module)
    assert status == 0, err
    assert "  sensor-1: 256-bit key, fingerprint " in out and "  gateway: 256-bit key" in out
    assert not any(k in out or k[:16] in out for k in keys)
    status, out, err = run_netsec(capsys, "convert", "--psk", tmp_path / "sensor-1.psk",
                                  "--psk", tmp_path / "sensor-1.psk", "-o", module)
    assert status != 0 and "identity sensor-1 is given twice" in err


def test_a_long_lived_server_certificate_is_warned(tmp_path, capsys):
    ca = cf.ca("Lifespan CA")
    cert, _ = cf.leaf(ca, not_after=cf.NOW + 730 * cf.DAY)
    path = cf.write(tmp_path / "server.pem", cert)
    status, out, err = run_netsec(capsys, "inspect", path)
    assert status == 0 and "is a server certificate valid for 73" in out, out
    assert "Mozilla's intermediate TLS profile allows at most 366" in out
    short, _ = cf.leaf(ca, not_after=cf.NOW + 300 * cf.DAY)
    status, out, _ = run_netsec(capsys, "inspect", cf.write(tmp_path / "short.pem", short))
    assert "intermediate TLS profile" not in out
