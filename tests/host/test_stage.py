"""Which credentials an image build freezes in (issue 13, case 14): netsec_cli.stage, which the
Makefile runs before every image build. The choice is explicit and remembered; the build says
what it froze in; the staged copy of the decrypted key is private; the README's key folders are
git-ignored. The whole path through make is tests/device/test_readme_own_credentials.py."""
import subprocess

import pytest
from cryptography import x509

import certfactory as cf
from certfactory import write
from harness import ROOT, require_tool
from netsec_cli import stage, x509util
from netsec_cli.main import main

# The default server certificate's, read from the PEM it was made from (it is reissued yearly).
DEFAULT_FINGERPRINT = x509util.sha256(x509util.parsed_cert(
    x509.load_pem_x509_certificate((ROOT / "tests/certs/default/server.pem").read_bytes())))


@pytest.fixture(scope="module")
def own_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own")
    ca = cf.ca("Own CA")
    server = cf.leaf(ca, hosts=("sensor-7.local",))
    status = main(["convert", "--server-cert", write(folder / "s.pem", server[0]),
                   "--server-key", write(folder / "k.pem", server[1]),
                   "--ca", write(folder / "ca.pem", ca[0]), "-o", str(folder / "Net_Security.py")])
    assert status == 0
    return folder / "Net_Security.py", x509util.sha256(server[0])


def build(capsys, tmp_path, value=""):
    status = stage.main([str(tmp_path / "unix"), "--choice", str(tmp_path / "choice"),
                         "--net-security", value])
    out, err = capsys.readouterr()
    return status, out, err


def test_a_chosen_module_is_remembered_until_default_is_asked_for(tmp_path, capsys, own_module):
    module, fingerprint = own_module
    staged = tmp_path / "unix" / "credentials" / "Net_Security.py"
    for value, how in ((str(module), "NET_SECURITY=%s, remembered in" % module),
                       ("", "remembered in"),  # a later plain make keeps it
                       ("", "NET_SECURITY=default goes back to the test credentials")):
        status, out, err = build(capsys, tmp_path, value)
        assert status == 0, err
        assert ("freezes in %s: SERVER_CERT CN=sensor-7.local sha256 %s (" % (module, fingerprint)
                in out), out
        assert how in out
        assert staged.read_bytes() == module.read_bytes()
    status, out, _ = build(capsys, tmp_path, "default")
    assert status == 0
    assert ("freezes in %s: SERVER_CERT CN=localhost,O=netsec PUBLIC TEST CREDENTIALS sha256 %s "
            "(PUBLIC TEST credentials) (NET_SECURITY=default)" % (stage._shown(stage.DEFAULT),
                                                                   DEFAULT_FINGERPRINT)) in out
    assert not (tmp_path / "choice").exists()
    status, out, _ = build(capsys, tmp_path)
    assert "(PUBLIC TEST credentials) (the default)" in out


def test_the_staged_copy_of_the_key_is_private(tmp_path, capsys, own_module):
    staged = tmp_path / "unix" / "credentials" / "Net_Security.py"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(own_module[0].read_bytes())
    staged.chmod(0o644)  # as an older build left it
    (tmp_path / "unix").chmod(0o755)
    status, _, err = build(capsys, tmp_path, str(own_module[0]))
    assert status == 0, err
    assert cf.mode(staged) == 0o600
    assert cf.mode(staged.parent) == 0o700 and cf.mode(tmp_path / "unix") == 0o700


@pytest.mark.parametrize("remembered", [False, True])
def test_a_missing_module_stops_the_build_in_one_line(tmp_path, capsys, remembered):
    gone = tmp_path / "gone" / "Net_Security.py"
    if remembered:
        (tmp_path / "choice").write_text("%s\n" % gone)
    status, out, err = build(capsys, tmp_path, "" if remembered else str(gone))
    assert status == 2 and out == ""
    assert err.count("\n") == 1, err
    if remembered:
        assert "choice: names %s, which no longer exists" % gone in err
    else:
        assert "NET_SECURITY=%s: no such file" % gone in err
    assert "NET_SECURITY=default" in err


@pytest.mark.parametrize("path", ["certs/ca-key.pem", "certs/server-key.pem",
                                  "fleet/sensor-1/server-key.pem", "Net_Security.py"])
def test_where_the_readme_and_help_write_keys_is_git_ignored(path):
    git = require_tool("git")
    ignored = subprocess.run([git, "-C", str(ROOT), "check-ignore", "-q", path])
    assert ignored.returncode == 0, "%s is not git-ignored" % path


def test_the_tests_builds_take_the_test_credentials_and_keep_the_choice(tmp_path, capsys,
                                                                         own_module):
    """`make test` after choosing your own credentials: its builds (and the test fixtures')
    freeze in the test credentials, and the next plain build takes yours again."""
    module, fingerprint = own_module
    staged = tmp_path / "unix" / "credentials" / "Net_Security.py"
    assert build(capsys, tmp_path, str(module))[0] == 0
    status, out, err = build(capsys, tmp_path, "tests")
    assert status == 0, err
    assert ("(PUBLIC TEST credentials) (for the tests; the next plain build takes %s again)"
            % module) in out, out
    assert staged.read_bytes() == stage.DEFAULT.read_bytes()
    status, out, _ = build(capsys, tmp_path)
    assert "SERVER_CERT CN=sensor-7.local sha256 %s (remembered in" % fingerprint in out, out
    assert staged.read_bytes() == module.read_bytes()
