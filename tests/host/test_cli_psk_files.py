"""Pre-shared key files as people handle them (issue 12's outside review): saved again by an
editor, with a key the firmware cannot take, corrupt, or a Net_Security.py written by hand with
such a key. convert reads what is the same key and refuses the rest in one line naming the file
and the fix; inspect warns, and never shows a key."""
import pytest

from certfactory import load_module, run_netsec

KEY = bytes(range(32))


def write_psk(path, key=KEY, identity="sensor-1"):
    path.write_text("%s:%s\n" % (identity, key.hex()))
    return path


# How editors save a one-line text file (str -> bytes as written to disk).
SAVED_AS = {
    "Notepad UTF-8 (BOM, CRLF)": lambda t: b"\xef\xbb\xbf" + t.replace("\n", "\r\n").encode(),
    "PowerShell 5 (UTF-16 LE with BOM, CRLF)": lambda t: t.replace("\n", "\r\n").encode("utf-16"),
    "UTF-16 LE without BOM": lambda t: t.encode("utf-16-le"),
    "no final newline": lambda t: t.strip().encode(),
}


@pytest.mark.parametrize("saved_as", SAVED_AS)
def test_a_psk_file_saved_again_by_an_editor_is_the_same_key(tmp_path, capsys, saved_as):
    text = write_psk(tmp_path / "sensor-1.psk").read_text()
    (tmp_path / "sensor-1.psk").write_bytes(SAVED_AS[saved_as](text))
    status, _, err = run_netsec(capsys, "convert", "--psk", tmp_path / "sensor-1.psk",
                                "-o", tmp_path / "Net_Security.py")
    assert status == 0, err
    assert load_module(tmp_path / "Net_Security.py")["PSK"] == {b"sensor-1": KEY}


@pytest.mark.parametrize("size", [15, 49])
def test_a_key_the_firmware_cannot_take_is_refused_naming_the_file(tmp_path, capsys, size):
    # mbedTLS takes 16 to 48 bytes (MBEDTLS_PSK_MAX_LEN); a longer key used to convert and then
    # fail every handshake on the device.
    path = write_psk(tmp_path / "odd.psk", bytes(size))
    status, _, err = run_netsec(capsys, "convert", "--psk", path, "-o", tmp_path / "N.py")
    assert status != 0 and str(path) in err and "a key of 16 to 48 bytes" in err, err
    assert "netsec keygen --psk NAME" in err and not (tmp_path / "N.py").exists()
    status, _, err = run_netsec(capsys, "convert", "--psk",
                                write_psk(tmp_path / "ok.psk", bytes(48)), "-o", tmp_path / "N.py")
    assert status == 0, err


@pytest.mark.parametrize("content", [b"\x00\xff" * 40, b"", b"sensor-1:" + b"zz" * 32 + b"\n",
                                     b"sensor-1\n" + KEY.hex().encode() + b"\n"],
                         ids=["binary", "empty", "not hex", "two lines"])
def test_a_corrupt_psk_file_is_refused_naming_the_file_and_the_fix(tmp_path, capsys, content):
    path = tmp_path / "broken.psk"
    path.write_bytes(content)
    status, _, err = run_netsec(capsys, "convert", "--psk", path, "-o", tmp_path / "N.py")
    assert status != 0 and len(err.strip().splitlines()) == 1 and str(path) in err, err
    assert " — " in err  # the fix follows the problem
    assert KEY.hex() not in err


def test_inspect_warns_of_a_key_the_firmware_cannot_take_and_never_shows_it(tmp_path, capsys):
    key = bytes(range(100, 164))  # 64 bytes, written by hand
    module = tmp_path / "Net_Security.py"
    module.write_text("FORMAT = 1\nPSK = {b'gateway': %r}\n" % key)
    status, out, err = run_netsec(capsys, "inspect", module)
    assert status == 0, err
    assert "PSK gateway has a 512-bit key; the firmware takes 128 to 384 bits" in out, out
    assert key.hex() not in out and key.hex()[:16] not in out and repr(key)[2:20] not in out


def test_keygen_makes_no_psk_file_that_convert_would_refuse(tmp_path, capsys):
    # A name of 129 characters used to give a file that convert refused as "not a PSK file".
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "k", "--psk", "a" * 129)
    assert status != 0 and "has 129 characters; a PSK identity has at most 128" in err, err
    assert not (tmp_path / "k").exists()
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "k", "--psk", "a" * 128)
    assert status == 0, err
    status, _, err = run_netsec(capsys, "convert", "--psk", tmp_path / "k" / ("a" * 128 + ".psk"),
                                "-o", tmp_path / "N.py")
    assert status == 0, err


@pytest.mark.parametrize("table", [{b"gateway": bytes(64)}, {b"": KEY}], ids=["long key", "empty"])
def test_deploy_refuses_a_psk_table_the_board_would_refuse(tmp_path, capsys, table):
    # It used to warn and copy it; the board then refused the whole set and kept the old one.
    module = tmp_path / "Net_Security.py"
    module.write_text("FORMAT = 1\nPSK = %r\n" % (table,))
    status, _, err = run_netsec(capsys, "deploy", module, "--device", tmp_path / "no-board")
    assert status == 2 and err.count("\n") == 1, err
    assert "the firmware" in err and "netsec keygen --psk NAME" in err
    assert "no such device" not in err  # refused before the board is looked for


@pytest.mark.parametrize("key", [b"correct horse battery staple", bytes(32)],
                         ids=["passphrase", "one byte"])
def test_a_guessable_key_is_warned_of(tmp_path, capsys, key):
    path = write_psk(tmp_path / "weak.psk", key)
    status, _, err = run_netsec(capsys, "convert", "--psk", path, "-o", tmp_path / "N.py")
    assert status == 0, err
    assert "warning: %s: the key looks chosen by a person" % path in err, err
    assert "netsec keygen --psk NAME" in err
    status, out, _ = run_netsec(capsys, "inspect", tmp_path / "N.py")
    assert "PSK sensor-1: the key looks chosen by a person" in out, out
    status, _, err = run_netsec(capsys, "convert", "--psk", write_psk(tmp_path / "ok.psk"),
                                "-o", tmp_path / "N.py")
    assert "warning" not in err, err
