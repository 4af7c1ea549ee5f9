"""netsec convert: the module it writes, and every refusal, with certificates the tests make."""
import hashlib
import shlex
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

import certfactory as cf
from certfactory import CLIENT_AUTH, DAY, NOW, load_module, mode, run_netsec, write
from netsec_cli import x509util

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "tests" / "certs" / "default"


@pytest.fixture(scope="module")
def pki():
    """A root CA, an intermediate, a server certificate under it, a client under the root."""
    root = cf.ca("Root CA")
    inter = cf.ca("Intermediate CA", signer=root)
    server = cf.leaf(inter, hosts=("device.local", "192.168.1.20"))
    client = cf.leaf(root, hosts=(), usage=CLIENT_AUTH, cn="device-client")
    return {"root": root, "inter": inter, "server": server, "client": client}


@pytest.fixture
def files(tmp_path, pki):
    """The pki as PEM files; the server file holds the leaf followed by its chain."""
    return {
        "root": write(tmp_path / "root.pem", pki["root"][0]),
        "inter": write(tmp_path / "inter.pem", pki["inter"][0]),
        "server": write(tmp_path / "server.pem", pki["server"][0], pki["inter"][0]),
        "server_key": write(tmp_path / "server-key.pem", pki["server"][1]),
        "client": write(tmp_path / "client.pem", pki["client"][0]),
        "client_key": write(tmp_path / "client-key.pem", pki["client"][1]),
    }


def server_args(files, *extra, cert=None, key=None, ca=None):
    """convert's arguments for the pki's server identity; cert, key or ca replace its files."""
    return ["convert", "--server-cert", cert or files["server"],
            "--server-key", key or files["server_key"], "--ca", ca or files["root"], *extra]


def leaf_args(tmp_path, signer, leaf, role="server"):
    """convert's arguments for leaf=(cert, key) checked against signer's CA: (argv, cert file)."""
    cert = write(tmp_path / "c.pem", leaf[0])
    key = write(tmp_path / "k.pem", leaf[1])
    argv = ["convert", "--%s-cert" % role, cert, "--%s-key" % role, key,
            "--ca", write(tmp_path / "ca.pem", signer[0]), "-o", tmp_path / "m.py"]
    return argv, cert


def refused(capsys, argv, where, message):
    """Run convert expecting a refusal: exit 2, one line naming `where` and a fix, no traceback."""
    status, out, err = run_netsec(capsys, *argv)
    assert status == 2, (out, err)
    assert err.count("\n") == 1, err
    assert err.startswith("netsec convert: error: %s" % where), err
    assert message in err and " — " in err, err
    assert "Traceback" not in err
    return err


def test_makes_the_output_directory(tmp_path, capsys, files):
    # The README's own example writes into build/<device>/, which does not exist yet.
    out = tmp_path / "build" / "sensor-7" / "Net_Security.py"
    status, stdout, err = run_netsec(capsys, *server_args(files, "--host", "device.local", "-o", out))
    assert status == 0, err
    assert load_module(out)["FORMAT"] == 1


def test_writes_every_constant_as_der(tmp_path, capsys, files, pki):
    out = tmp_path / "Net_Security.py"
    argv = server_args(files, "--host", "device.local", "--host", "192.168.1.20",
                       "--client-ca", files["root"], "--email-server-ca", files["inter"],
                       "--client-cert", files["client"], "--client-key", files["client_key"],
                       "-o", out)
    status, stdout, err = run_netsec(capsys, *argv)
    assert status == 0, err
    assert err == ""
    m = load_module(out)
    assert m["FORMAT"] == 1 and m["TEST_ONLY"] is False
    assert m["SERVER_CERT"] == cf.der(pki["server"][0])
    assert m["SERVER_CHAIN"] == (cf.der(pki["inter"][0]),)
    assert m["SERVER_KEY"] == cf.der(pki["server"][1])
    assert m["CLIENT_CAS"] == (cf.der(pki["root"][0]),)
    assert m["EMAIL_SERVER_CAS"] == (cf.der(pki["inter"][0]),)
    assert m["CLIENT_CERT"] == cf.der(pki["client"][0])
    assert m["CLIENT_KEY"] == cf.der(pki["client"][1])
    assert m["REVOKED"] == {}
    info = m["INFO"]["SERVER_CERT"]
    assert info["subject"] == "CN=device.local" and info["issuer"] == "CN=Intermediate CA"
    assert info["sans"] == ["DNS:device.local", "IP:192.168.1.20"] and info["key"] == "EC P-256"
    assert info["sha256"] == hashlib.sha256(m["SERVER_CERT"]).hexdigest()
    assert info["not_after"] == pki["server"][0].not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    root = pki["root"][0]
    assert m["INFO"]["CLIENT_CAS"] == (("CN=Root CA", x509util.iso(root.not_valid_after_utc),
                                        hashlib.sha256(cf.der(root)).hexdigest()),)
    assert m["INFO"]["CLIENT_CERT"]["subject"] == "CN=device-client"
    assert mode(out) == 0o600  # it holds decrypted private keys
    text = out.read_text()
    assert "DECRYPTED" in text
    assert "# Made with: netsec convert" in text and "#   --server-cert " in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "wrote %s" % out in stdout


def test_output_is_deterministic(tmp_path, capsys, files):
    argv = server_args(files, "--client-ca", files["root"], "--email-server-ca", files["root"],
                       "-o", tmp_path / "a.py")
    assert run_netsec(capsys, *argv)[0] == 0
    first = (tmp_path / "a.py").read_bytes()
    assert run_netsec(capsys, *argv)[0] == 0
    assert (tmp_path / "a.py").read_bytes() == first


def test_chain_is_ordered_from_the_leafs_issuer_and_strays_are_left_out(tmp_path, capsys):
    root = cf.ca("Root")
    upper = cf.ca("Upper", signer=root)
    lower = cf.ca("Lower", signer=upper)
    stray = cf.ca("Stray")
    server = cf.leaf(lower)
    argv, _ = leaf_args(tmp_path, root, server)
    bundle = write(tmp_path / "bundle.pem", root[0], stray[0], upper[0], lower[0])
    status, _, err = run_netsec(capsys, *argv, "--chain", bundle)
    assert status == 0, err
    assert load_module(tmp_path / "m.py")["SERVER_CHAIN"] == (cf.der(lower[0]), cf.der(upper[0]))
    assert "CN=Stray is not on the path to the CA; left out" in err


def test_der_inputs_and_a_key_inside_the_certificate_file(tmp_path, capsys, pki):
    root_der = tmp_path / "root.der"
    root_der.write_bytes(cf.der(pki["root"][0]))
    key_der = tmp_path / "client-key.der"
    key_der.write_bytes(cf.der(pki["client"][1]))
    cert_der = tmp_path / "client.der"
    cert_der.write_bytes(cf.der(pki["client"][0]))
    combined = write(tmp_path / "combined.pem", pki["client"][0], pki["client"][1])
    for cert, key in ((cert_der, ["--client-key", key_der]), (combined, [])):
        status, _, err = run_netsec(capsys, "convert", "--client-cert", cert, *key, "--ca",
                                    root_der, "-o", tmp_path / "m.py")
        assert status == 0, err
        assert load_module(tmp_path / "m.py")["CLIENT_KEY"] == cf.der(pki["client"][1])


def test_email_bundle_keeps_order_and_drops_duplicates(tmp_path, capsys):
    cas = [cf.ca("CA %d" % i)[0] for i in range(5)]
    bundle = write(tmp_path / "bundle.pem", *cas, cas[2])
    status, _, err = run_netsec(capsys, "convert", "--email-server-ca", bundle, "-o",
                                tmp_path / "m.py")
    assert status == 0, err
    m = load_module(tmp_path / "m.py")
    assert m["EMAIL_SERVER_CAS"] == tuple(cf.der(c) for c in cas)
    assert m["SERVER_CERT"] is None and m["SERVER_KEY"] is None and m["SERVER_CHAIN"] == ()
    assert mode(tmp_path / "m.py") == 0o644  # no key inside


def test_info_of_list_fields_is_tuples_of_str_only(tmp_path, capsys, files, pki):
    """MicroPython folds a tuple of str into one constant, frozen into flash. A dict per CA was
    built in RAM at import: ~33 KB of heap for the 140-CA system bundle on the unix image."""
    cas = [cf.ca("Bundle CA %d" % i)[0] for i in range(60)]
    out = tmp_path / "m.py"
    argv = server_args(files, "--client-ca", files["root"],
                       "--email-server-ca", write(tmp_path / "bundle.pem", *cas), "-o", out)
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0, err
    info = load_module(out)["INFO"]

    def constant(value):
        return type(value) is str or (type(value) is tuple and all(map(constant, value)))

    for field, certs in (("SERVER_CHAIN", [pki["inter"][0]]), ("CLIENT_CAS", [pki["root"][0]]),
                         ("EMAIL_SERVER_CAS", cas)):
        assert constant(info[field]), field
        assert info[field] == tuple(
            (c.subject.rfc4514_string(), x509util.iso(c.not_valid_after_utc),
             hashlib.sha256(cf.der(c)).hexdigest()) for c in certs), field
    assert isinstance(info["SERVER_CERT"], dict)  # one certificate: all its facts, for the demo


@pytest.mark.parametrize("traditional", [False, True])
def test_encrypted_key_is_decrypted_with_the_env_passphrase(tmp_path, capsys, monkeypatch, files,
                                                            pki, traditional):
    encrypted = write(tmp_path / "enc-key.pem", pki["server"][1], password="pass phrase",
                      traditional=traditional)
    assert b"ENCRYPTED" in Path(encrypted).read_bytes()
    argv = server_args(files, "-o", tmp_path / "m.py", key=encrypted)
    refused(capsys, argv, encrypted, "the private key is encrypted — set NETSEC_KEY_PASSPHRASE")
    monkeypatch.setenv("NETSEC_KEY_PASSPHRASE", "wrong")
    refused(capsys, argv, encrypted, "cannot decrypt the private key: wrong passphrase")
    monkeypatch.setenv("NETSEC_KEY_PASSPHRASE", "pass phrase")
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0, err
    assert load_module(tmp_path / "m.py")["SERVER_KEY"] == cf.der(pki["server"][1])


def test_encrypted_der_key(tmp_path, capsys, monkeypatch, files, pki):
    encrypted = tmp_path / "enc-key.der"
    encrypted.write_bytes(pki["server"][1].private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw")))
    monkeypatch.setenv("NETSEC_KEY_PASSPHRASE", "pw")
    status, _, err = run_netsec(capsys, *server_args(files, "-o", tmp_path / "m.py", key=encrypted))
    assert status == 0, err


def test_crl_serials_go_into_revoked_by_issuer(tmp_path, capsys, files, pki):
    crl_root = write(tmp_path / "root.crl", cf.crl(pki["root"], [5, 3, 0x1234567890abcdef1234]))
    crl_inter = tmp_path / "inter.crl"
    crl_inter.write_bytes(cf.der(cf.crl(pki["inter"], [9])))
    argv = server_args(files, "--client-ca", files["root"], "--crl", crl_root, "--crl", crl_inter,
                       "-o", tmp_path / "m.py")
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0, err
    m = load_module(tmp_path / "m.py")
    assert m["REVOKED"] == {
        pki["root"][0].subject.public_bytes(): (3, 5, 0x1234567890abcdef1234),
        pki["inter"][0].subject.public_bytes(): (9,),
    }
    assert sorted(m["INFO"]["REVOKED"]) == ["CN=Intermediate CA", "CN=Root CA"]


def test_crl_past_next_update_is_a_warning(tmp_path, capsys, files, pki):
    stale = write(tmp_path / "stale.crl", cf.crl(pki["root"], [7], next_update=NOW - DAY))
    argv = server_args(files, "--crl", stale, "-o", tmp_path / "m.py")
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0
    assert "netsec convert: warning: %s" % stale in err and "past its nextUpdate" in err


def test_crl_not_signed_by_the_ca_it_names_is_refused(tmp_path, capsys, files, pki):
    impostor = cf.ca("Impostor")
    forged_crl = cf.crl(impostor, [1], issuer_name=pki["root"][0].subject)
    forged = write(tmp_path / "forged.crl", forged_crl)
    refused(capsys, server_args(files, "--crl", forged), forged,
            "the CRL says it is from CN=Root CA, but that CA did not sign it")


def test_crl_of_an_unknown_ca_is_refused(tmp_path, capsys, files):
    other = write(tmp_path / "other.crl", cf.crl(cf.ca("Other CA"), [1]))
    refused(capsys, server_args(files, "--crl", other), other,
            "the CRL's issuer (CN=Other CA) is not among the given CAs")


def test_revoked_server_certificate_is_refused(tmp_path, capsys, files, pki):
    crl = write(tmp_path / "inter.crl", cf.crl(pki["inter"], [pki["server"][0].serial_number]))
    refused(capsys, server_args(files, "--crl", crl), files["server"], "is revoked by a given CRL")


# ---- refusals of damaged files ----


def test_truncated_pem_names_block_and_line(tmp_path, capsys, files, pki):
    text = Path(files["server"]).read_text()
    cut = write(tmp_path / "cut.pem", text[:text.rindex("-----END")].encode())
    second_block_line = text.count("\n", 0, text.index("-----BEGIN", 10)) + 1
    refused(capsys, server_args(files, cert=cut), cut,
            "block 2 (CERTIFICATE, line %d) has no END line" % second_block_line)


def test_damaged_pem_body(tmp_path, capsys, files):
    lines = Path(files["server"]).read_text().splitlines()
    del lines[3:6]  # lines lost from the middle of the first certificate
    damaged = write(tmp_path / "damaged.pem", ("\n".join(lines) + "\n").encode())
    refused(capsys, server_args(files, cert=damaged), damaged + " block 1 (line 1)", "damaged")


@pytest.mark.parametrize("content, message", [
    (b"hello, not a certificate\n", "neither PEM (no -----BEGIN line) nor a DER certificate"),
    (b"", "the file is empty"),
    (b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
     "is a certificate request"),
])
def test_not_pem_or_der(tmp_path, capsys, files, content, message):
    bad = tmp_path / "bad.pem"
    bad.write_bytes(content)
    refused(capsys, ["convert", "--client-ca", bad], bad, message)


def test_truncated_der(tmp_path, capsys, pki):
    bad = tmp_path / "root.der"
    bad.write_bytes(cf.der(pki["root"][0])[:200])
    refused(capsys, ["convert", "--client-ca", bad], bad, "may be truncated")


def test_missing_file(tmp_path, capsys):
    refused(capsys, ["convert", "--client-ca", tmp_path / "nope.pem"], tmp_path / "nope.pem",
            "cannot read the file")


def test_wrong_kind_of_object_for_an_option(tmp_path, capsys, files):
    refused(capsys, ["convert", "--client-ca", files["server_key"]], files["server_key"],
            "holds a private key, which --client-ca does not take — "
            "pass private keys with --server-key")


# ---- refusals of certificates and keys ----


def test_mismatched_key(tmp_path, capsys, files):
    other = write(tmp_path / "other-key.pem", cf.key())
    refused(capsys, server_args(files, key=other), other,
            "the key does not match the server certificate")


def test_two_keys_or_none(tmp_path, capsys, files, pki):
    combined = write(tmp_path / "combined.pem", pki["server"][0], pki["inter"][0], pki["server"][1])
    refused(capsys, server_args(files, cert=combined), files["server_key"],
            "2 private keys for the server certificate")
    refused(capsys, ["convert", "--server-cert", files["server"], "--ca", files["root"]],
            "--server-key", "no private key for the server certificate")


def test_chain_must_lead_to_the_given_ca(tmp_path, capsys, files, pki):
    wrong = write(tmp_path / "wrong-ca.pem", cf.ca("Somebody Else")[0])
    refused(capsys, server_args(files, ca=wrong), files["server"],
            "the chain does not lead to the given CA: CN=Intermediate CA was issued by CN=Root CA")
    leaf_only = write(tmp_path / "leaf.pem", pki["server"][0])
    refused(capsys, server_args(files, cert=leaf_only), leaf_only,
            "was issued by CN=Intermediate CA, which is neither --ca")


def test_ca_with_the_right_name_but_another_key(tmp_path, capsys, files):
    twin = write(tmp_path / "twin.pem", cf.ca("Root CA")[0])
    refused(capsys, server_args(files, ca=twin), files["server"],
            "names CN=Root CA as its issuer, but the --ca of that name")


def test_server_certificate_needs_server_auth(tmp_path, capsys, pki):
    argv, cert = leaf_args(tmp_path, pki["root"], cf.leaf(pki["root"], usage=CLIENT_AUTH))
    refused(capsys, argv, cert, "the server certificate lacks the serverAuth extended key usage "
            "(it allows clientAuth)")


def test_client_certificate_needs_client_auth(tmp_path, capsys, pki):
    argv, cert = leaf_args(tmp_path, pki["root"], cf.leaf(pki["root"]), role="client")
    refused(capsys, argv, cert, "the client certificate lacks the clientAuth extended key usage "
            "(it allows serverAuth)")


def test_client_certificate_must_be_issued_directly(tmp_path, capsys, pki):
    client = cf.leaf(pki["inter"], hosts=(), usage=CLIENT_AUTH)
    argv, cert = leaf_args(tmp_path, pki["root"], client, role="client")
    refused(capsys, argv, cert, "Net_Security has no client chain")


def test_hosts_must_be_in_the_certificate(tmp_path, capsys, files):
    refused(
        capsys, server_args(files, "--host", "other.local"), files["server"],
        "the server certificate is not valid for other.local "
        "(it names: DNS:device.local, IP:192.168.1.20)"
    )
    refused(capsys, server_args(files, "--host", "10.0.0.1"), files["server"],
            "is not valid for 10.0.0.1")
    assert run_netsec(capsys, *server_args(files, "--host", "DEVICE.local", "-o",
                                           "/dev/null"))[0] == 0


def test_wildcard_certificate_covers_one_label(tmp_path, capsys, pki):
    argv, cert = leaf_args(tmp_path, pki["root"], cf.leaf(pki["root"], hosts=("*.plant.example",)))
    assert run_netsec(capsys, *argv, "--host", "pump.plant.example")[0] == 0
    refused(capsys, argv + ["--host", "a.pump.plant.example"], cert,
            "is not valid for a.pump.plant.example")


def test_expired_and_not_yet_valid(tmp_path, capsys, pki):
    expired = cf.leaf(pki["root"], not_before=NOW - 400 * DAY, not_after=NOW - DAY)
    future = cf.leaf(pki["root"], not_before=NOW + 10 * DAY)
    for leaf, message in ((expired, "is expired on"), (future, "is not valid until")):
        argv, cert = leaf_args(tmp_path, pki["root"], leaf)
        refused(capsys, argv, cert, message + " ")
        status, _, err = run_netsec(capsys, *argv, "--allow-expired")
        assert status == 0
        assert "!!!" in err and "ONLY because of --allow-expired" in err and message in err


def test_expired_ca_is_refused(tmp_path, capsys):
    old = cf.ca("Old CA", not_before=NOW - 900 * DAY, not_after=NOW - DAY)
    f = write(tmp_path / "old.pem", old[0])
    refused(capsys, ["convert", "--client-ca", f], f,
            "a CLIENT_CAS certificate (CN=Old CA) is expired")


def test_a_bundle_leaves_out_cas_that_can_verify_nothing(tmp_path, capsys):
    good = cf.ca("Good CA")[0]
    old = cf.ca("Old CA", not_before=NOW - 900 * DAY, not_after=NOW - DAY)[0]
    weak = cf.ca("Weak CA", private_key=cf.key("rsa1024"))[0]
    bundle = write(tmp_path / "bundle.pem", old, good, weak)
    out = tmp_path / "m.py"
    status, _, err = run_netsec(capsys, "convert", "--email-server-ca", bundle, "-o", out)
    assert status == 0, err
    assert load_module(out)["EMAIL_SERVER_CAS"] == (cf.der(good),)
    assert ("%s block 1 (line 1): left out of the bundle: "
            "an EMAIL_SERVER_CAS certificate (CN=Old CA) is expired" % bundle) in err
    third = Path(bundle).read_text().split("\n").index("-----BEGIN CERTIFICATE-----",
                                                       2 * cf.pem(good).count(b"\n") - 2)
    assert "block 3 (line %d): left out of the bundle: " % (third + 1) in err
    assert "RSA 1024" in err


def test_expiring_within_30_days_is_a_warning(tmp_path, capsys, pki):
    argv, cert = leaf_args(tmp_path, pki["root"], cf.leaf(pki["root"], not_after=NOW + 20 * DAY))
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0
    assert "netsec convert: warning: %s" % cert in err and "within 30 days" in err


@pytest.mark.parametrize("kind, name", [("rsa1024", "RSA 1024"), ("ed25519", "Ed25519"),
                                        ("secp256k1", "EC secp256k1")])
def test_unsupported_server_keys(tmp_path, capsys, pki, kind, name):
    argv, cert = leaf_args(tmp_path, pki["root"], cf.leaf(pki["root"], private_key=cf.key(kind)))
    refused(capsys, argv, cert, "the server certificate has %s, which the firmware's TLS cannot "
            "use — use EC P-256, P-384 or P-521, or RSA 2048..4096" % name)


@pytest.mark.parametrize("kind", ["rsa1024", "ed25519"])
def test_unsupported_ca_keys(tmp_path, capsys, kind):
    f = write(tmp_path / "ca.pem", cf.ca("Odd CA", private_key=cf.key(kind))[0])
    refused(capsys, ["convert", "--client-ca", f], f, "which the firmware's TLS cannot use")


@pytest.mark.parametrize("kind, name", [("p384", "EC P-384"), ("p521", "EC P-521"),
                                        ("rsa2048", "RSA 2048")])
def test_supported_key_types(tmp_path, capsys, kind, name):
    root = cf.ca("Root", private_key=cf.key(kind))
    argv, _ = leaf_args(tmp_path, root, cf.leaf(root, private_key=cf.key(kind)))
    status, _, err = run_netsec(capsys, *argv)
    assert status == 0, err
    assert load_module(tmp_path / "m.py")["INFO"]["SERVER_CERT"]["key"] == name


def test_sha1_signature_is_refused(tmp_path, capsys, pki):
    # cryptography will not sign with SHA-1 any more; openssl still can.
    ca_file = write(tmp_path / "ca.pem", pki["root"][0])
    ca_key = write(tmp_path / "ca-key.pem", pki["root"][1])
    key, csr, cert = write(tmp_path / "k.pem", cf.key()), tmp_path / "c.csr", tmp_path / "c.pem"
    (tmp_path / "ext.cnf").write_text("extendedKeyUsage = serverAuth\n"
                                      "subjectAltName = DNS:localhost\n")
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr],
                   check=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key,
                    "-sha1", "-days", "30", "-set_serial", "7", "-extfile", tmp_path / "ext.cnf",
                    "-out", cert], check=True, capture_output=True)
    refused(capsys, ["convert", "--server-cert", cert, "--server-key", key, "--ca", ca_file], cert,
            "the server certificate is signed with sha1, which the firmware's TLS rejects")


def test_a_leaf_is_no_client_ca(tmp_path, capsys, files):
    refused(capsys, ["convert", "--client-ca", files["client"]], files["client"],
            "is not a CA certificate")


@pytest.mark.parametrize("argv, where, message", [
    ([], "", "nothing to convert"),
    (["--host", "x"], "--host", "is given without --server-cert"),
    (["--client-ca", "{root}", "--client-key", "{server_key}"], "--client-key",
     "is given without --client-cert"),
])
def test_option_combinations(capsys, files, argv, where, message):
    err = refused(capsys, ["convert"] + [a.format(**files) for a in argv], where, message)
    assert where or err.startswith("netsec convert: error: nothing")


def test_server_cert_needs_a_ca(capsys, files):
    argv = server_args(files)
    refused(capsys, argv[:argv.index("--ca")], "--ca", "is needed to check the certificate chain")


# ---- the public default test credentials ----


def test_default_credentials_are_marked_test_only_and_warned_about(tmp_path, capsys):
    status, _, err = run_netsec(capsys, "convert", "--server-cert", DEFAULT / "server.pem",
                                "--server-key", DEFAULT / "server-key.pem",
                                "--ca", DEFAULT / "ca.pem", "-o", tmp_path / "m.py")
    assert status == 0
    assert "PUBLIC default test credentials" in err
    m = load_module(tmp_path / "m.py")
    assert m["TEST_ONLY"] is True
    assert "PUBLIC TEST CREDENTIALS, NOT SECRET" in (tmp_path / "m.py").read_text()


def test_test_ca_is_recognised_by_fingerprint_too():
    with open(DEFAULT / "ca.pem", "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    fingerprint = x509util.sha256(ca)
    assert fingerprint == x509util.TEST_CA_SHA256, "update TEST_CA_SHA256 after make.sh"


def test_frozen_default_module_matches_its_sources(tmp_path, capsys):
    """modules/Net_Security.py is what make.sh's convert command gives today (header aside)."""
    script = (DEFAULT / "make.sh").read_text().replace("\\\n", " ")
    command = next(line for line in script.splitlines() if " convert " in line)
    argv = shlex.split(command)[1:]
    argv[argv.index("-o") + 1] = str(tmp_path / "m.py")
    argv = [str(ROOT / a) if a.startswith("tests/") else a for a in argv]
    assert run_netsec(capsys, *argv)[0] == 0

    def body(path):
        return [line for line in Path(path).read_text().splitlines() if not line.startswith("#")]

    assert body(tmp_path / "m.py") == body(ROOT / "modules" / "Net_Security.py")
    m = load_module(ROOT / "modules" / "Net_Security.py")
    assert m["TEST_ONLY"] is True
    test_ca = x509.load_pem_x509_certificate((DEFAULT / "ca.pem").read_bytes())
    assert m["CLIENT_CAS"] == m["EMAIL_SERVER_CAS"] == (cf.der(test_ca),)
