"""netsec deploy against the QEMU image: a module made by netsec convert from certificates made here
is copied to netsec-credentials/ and netsec.tls uses it for its next connection, no reset."""
import ast
import hashlib
import os
import time

import pytest

import certfactory as cf
from certfactory import run_netsec, write
from netsec_cli import device, x509util

pytestmark = pytest.mark.qemu

REMOVE_LEFTOVERS = """\
import os
def remove(path):
    if os.stat(path)[0] & 0x4000:
        for name in os.listdir(path):
            remove(path + '/' + name)
        os.rmdir(path)
    else:
        os.remove(path)
for path in ('netsec-credentials', 'netsec-deploy.part'):
    if path in os.listdir():
        remove(path)
"""
NEW_SUBJECT = "CN=deployed.netsec.test"


@pytest.fixture
def clean_guest(guest):
    """The guest without deployed credentials, before and after the test (other tests share it)."""
    def clean():
        guest.exec(REMOVE_LEFTOVERS)
        assert not guest_files(guest) & {"netsec-credentials", "netsec-deploy.part"}

    clean()
    yield guest
    clean()
    guest.soft_reset()  # forget the credentials netsec.tls loaded


def deploy(capsys, guest, module):
    """`netsec deploy module --device <the guest's pty>`, the test's own connection set aside."""
    with guest.released():
        return run_netsec(capsys, "deploy", module, "--device", guest.port)


def guest_files(guest):
    return set(guest.eval("__import__('os').listdir()"))


def selftest(guest, cas):
    """netsec.selftest.run('localhost', cas) in the guest: the report it returns."""
    out = guest.exec("from netsec import selftest\nprint(repr(selftest.run('localhost', cas=%r)))"
                     % (cas,))
    return ast.literal_eval(out.strip().splitlines()[-1])


@pytest.fixture
def new_pki():
    root = cf.ca("netsec deploy test CA")
    return root, cf.leaf(root, hosts=("localhost",), cn="deployed.netsec.test")


def converted(capsys, folder, pki):
    """netsec convert's module for pki=(root, server), written in folder."""
    root, (cert, key) = pki
    folder.mkdir(exist_ok=True)
    out = folder / "Net_Security.py"
    status, _, err = run_netsec(capsys, "convert", "--server-cert", write(folder / "s.pem", cert),
                                "--server-key", write(folder / "k.pem", key),
                                "--ca", write(folder / "ca.pem", root[0]), "--host", "localhost",
                                "-o", out)
    assert status == 0, err
    return out


def test_deployed_module_is_used_by_the_next_connection(clean_guest, capsys, tmp_path, new_pki):
    guest = clean_guest
    module = converted(capsys, tmp_path, new_pki)
    new_ca = cf.der(new_pki[0][0])
    assert selftest(guest, None)["peer"] != NEW_SUBJECT  # the frozen credentials, loaded

    status, out, err = deploy(capsys, guest, module)

    assert status == 0, err
    assert err == ""
    assert out.count("\n") == 1
    assert "-> %s:netsec-credentials/Net_Security.py" % guest.port in out
    assert ", sha256 %s matches the board's copy; " % hashlib.sha256(module.read_bytes()) \
        .hexdigest() in out
    assert "SERVER_CERT %s (sha256 %s)" % (NEW_SUBJECT, x509util.sha256(new_pki[1][0])) in out
    # The same heap: netsec.tls must notice the new file.
    assert guest.eval("open('netsec-credentials/Net_Security.py', 'rb').read()") == \
        module.read_bytes()
    assert "netsec-deploy.part" not in guest_files(guest)
    assert selftest(guest, (new_ca,))["peer"] == NEW_SUBJECT


def test_redeploying_replaces_the_module(clean_guest, capsys, tmp_path, new_pki):
    first = converted(capsys, tmp_path / "first", new_pki)
    other_root = cf.ca("netsec deploy second CA")
    second = converted(capsys, tmp_path / "second",
                       (other_root, cf.leaf(other_root, hosts=("localhost",))))
    for module in (first, second):
        status, _, err = deploy(capsys, clean_guest, module)
        assert status == 0, err
    assert selftest(clean_guest, (cf.der(other_root[0]),))["peer"] == "CN=localhost"


def write_module(path, **fields):
    """A plain-constants module, as netsec convert's output looks to the reader."""
    path.write_text("".join("%s = %r\n" % item for item in fields.items()))
    return path


def test_mismatched_key_is_refused_and_nothing_is_written(clean_guest, capsys, tmp_path, new_pki):
    _, (cert, _) = new_pki
    module = write_module(tmp_path / "Net_Security.py", FORMAT=1, TEST_ONLY=False,
                          SERVER_CERT=cf.der(cert), SERVER_KEY=cf.der(cf.key()))

    status, out, err = deploy(capsys, clean_guest, module)

    assert (status, out) == (2, "")
    assert err == ("netsec deploy: error: %s: SERVER_KEY does not belong to SERVER_CERT — make the "
                   "module again with netsec convert from the matching certificate and key\n"
                   % module)
    assert not guest_files(clean_guest) & {"netsec-credentials", "netsec-deploy.part"}


def test_unknown_format_is_refused(clean_guest, capsys, tmp_path, new_pki):
    _, (cert, key) = new_pki
    module = write_module(tmp_path / "Net_Security.py", FORMAT=2, SERVER_CERT=cf.der(cert),
                          SERVER_KEY=cf.der(key))
    status, _, err = deploy(capsys, clean_guest, module)
    assert status == 2
    assert "FORMAT is 2; the firmware reads FORMAT 1 only" in err
    assert "netsec-credentials" not in guest_files(clean_guest)


def test_test_credentials_are_deployed_with_a_warning(clean_guest, capsys):
    default = os.path.join(os.path.dirname(__file__), "..", "..", "modules", "Net_Security.py")
    status, out, err = deploy(capsys, clean_guest, default)
    assert status == 0, err
    assert "warning:" in err and "PUBLIC default test credentials" in err
    assert "matches the board's copy" in out


def test_missing_device_says_to_connect_it(capsys, tmp_path, new_pki):
    module = converted(capsys, tmp_path, new_pki)
    status, out, err = run_netsec(capsys, "deploy", module, "--device", tmp_path / "ttyACM9")
    assert (status, out) == (2, "")
    assert err == ("netsec deploy: error: %s: no such device — is the board connected? give its "
                   "port with --device\n" % (tmp_path / "ttyACM9"))


def test_silent_port_says_it_gets_no_answer(capsys, tmp_path, new_pki):
    module = converted(capsys, tmp_path, new_pki)
    controller, port = os.openpty()  # a real port with nothing behind it answering
    name = os.ttyname(port)
    try:
        started = time.monotonic()
        status, out, err = run_netsec(capsys, "deploy", module, "--device", name)
        waited = time.monotonic() - started
    finally:
        os.close(controller)
        os.close(port)
    assert (status, out) == (2, "")
    assert err == ("netsec deploy: error: %s: no answer from a MicroPython REPL within %g s — %s\n"
                   % (name, device.ANSWER_TIMEOUT, device.CHECK_PORT))
    assert waited < device.ANSWER_TIMEOUT + 2, "a silent port must not hold the command up"
