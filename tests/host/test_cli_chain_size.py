"""A certificate chain the firmware cannot send (issue 13, case 10): the Certificate message must
fit in the firmware's outgoing TLS record (sized_chain.OUT_RECORD). convert, inspect and deploy
refuse (or, inspect, warn about) one that does not, with its size, the limit and the fix;
exactly at the limit is accepted (tests/device/test_chain_size.py proves it with a handshake)."""
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import certfactory as cf
import sized_chain
from certfactory import CLIENT_AUTH, run_netsec, write


@pytest.fixture(scope="module", params=[sized_chain.OUT_RECORD, sized_chain.OUT_RECORD + 1],
                ids=["at-the-limit", "one-byte-over"])
def sized(request):
    return request.param, sized_chain.chain(request.param)


def convert_server(capsys, tmp_path, pki):
    files = [write(tmp_path / "server.pem", pki["leaf"][0], *pki["chain"]),
             write(tmp_path / "server-key.pem", pki["leaf"][1]),
             write(tmp_path / "ca.pem", pki["root"][0])]
    out = tmp_path / "Net_Security.py"
    return run_netsec(capsys, "convert", "--server-cert", files[0], "--server-key", files[1],
                      "--ca", files[2], "--host", "localhost", "-o", out), out


def test_convert_refuses_a_server_chain_over_the_limit_and_takes_one_at_it(tmp_path, capsys,
                                                                            sized):
    size, pki = sized
    (status, _, err), _ = convert_server(capsys, tmp_path, pki)
    if size <= sized_chain.OUT_RECORD:
        assert status == 0, err
        return
    assert status == 2
    assert err.count("\n") == 1, err
    assert ("server.pem block 1 (line 1): the server certificate (%d bytes) and its 2 "
            "intermediate CA(s)" % len(cf.der(pki["leaf"][0]))) in err
    assert "TLS Certificate message of 4097 bytes, over the 4096 bytes the firmware" in err
    assert "use an EC key" in err and "fewer intermediate CAs" in err


def test_convert_refuses_a_client_certificate_too_big_to_send(tmp_path, capsys):
    root = cf.ca("Client Root CA", private_key=cf.key("rsa2048"))
    pad = x509.UnrecognizedExtension(sized_chain.PADDING, b"\x04\x82\x10\x00" + bytes(4096))
    key = cf.key("p256")
    cert = (cf._builder("big-client", root[0], key, None, None, 365)
            .add_extension(x509.ExtendedKeyUsage([CLIENT_AUTH]), critical=False)
            .add_extension(pad, critical=False).sign(root[1], hashes.SHA256()))
    status, _, err = run_netsec(
        capsys, "convert", "--client-cert", write(tmp_path / "c.pem", cert), "--client-key",
        write(tmp_path / "k.pem", key), "--ca", write(tmp_path / "ca.pem", root[0]),
        "-o", tmp_path / "N.py")
    assert status == 2
    assert "the client certificate (%d bytes) and its 0 intermediate CA(s)" % len(cf.der(cert)) \
        in err, err
    assert "over the 4096 bytes the firmware can send" in err


def oversized_module(tmp_path, capsys):
    """A module convert would refuse, made by converting at the limit and growing the chain."""
    pki = sized_chain.chain(sized_chain.OUT_RECORD)
    (status, _, err), out = convert_server(capsys, tmp_path, pki)
    assert status == 0, err
    text = out.read_text().replace("SERVER_CHAIN = (", "SERVER_CHAIN = (\n    %r," % (
        cf.der(pki["chain"][-1]),), 1)  # the top intermediate twice: bigger, still a module
    out.write_text(text)
    return out


def test_deploy_refuses_a_module_whose_chain_the_board_cannot_send(tmp_path, capsys):
    module = oversized_module(tmp_path, capsys)
    status, _, err = run_netsec(capsys, "deploy", module, "--device", tmp_path / "no-board")
    assert status == 2
    assert err.count("\n") == 1, err
    assert "SERVER_CERT with SERVER_CHAIN make a TLS Certificate message of" in err
    assert "no such device" not in err  # refused before the board is looked for


def test_inspect_warns_about_a_chain_the_board_cannot_send(tmp_path, capsys):
    module = oversized_module(tmp_path, capsys)
    status, out, err = run_netsec(capsys, "inspect", module)
    assert status == 0, err
    assert "over the 4096 bytes the firmware can send" in out + err
