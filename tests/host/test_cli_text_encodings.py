"""Files as editors and tools save them (issue 13, case 15): byte-order marks, CRLF, UTF-16,
UTF-32, stray indentation. Every input the CLI reads as text (PEM files, the --fleet CSV, a
Net_Security.py for inspect/deploy) is read as the same content, or refused in one line
naming the encoding or character and the fix."""
import pytest

import certfactory as cf
from certfactory import load_module, run_netsec


@pytest.fixture(scope="module")
def identity():
    ca = cf.ca("Encoding CA")
    server = cf.leaf(ca, hosts=("device.local",))
    return {"ca": cf.pem(ca[0]), "cert": cf.pem(server[0]), "key": cf.pem(server[1])}


def crlf(text):
    return text.replace("\n", "\r\n")


# How editors and tools save a PEM (str -> bytes as written to disk).
SAVED_AS = {
    "plain": lambda t: t.encode("ascii"),
    "Notepad UTF-8 (BOM, CRLF)": lambda t: b"\xef\xbb\xbf" + crlf(t).encode(),
    "UTF-8 BOM, LF": lambda t: b"\xef\xbb\xbf" + t.encode(),
    "CRLF": lambda t: crlf(t).encode(),
    "classic Mac CR": lambda t: t.replace("\n", "\r").encode(),
    "PowerShell 5 (UTF-16 LE with BOM, CRLF)": lambda t: crlf(t).encode("utf-16"),
    "UTF-16 BE with BOM": lambda t: b"\xfe\xff" + t.encode("utf-16-be"),
    "UTF-16 LE without BOM": lambda t: t.encode("utf-16-le"),
    "UTF-32 with BOM": lambda t: t.encode("utf-32"),
    "indented by 4 spaces (YAML, mail)": lambda t: "".join(
        "    " + line for line in t.splitlines(True)).encode(),
    "tab-indented, trailing blanks": lambda t: "".join(
        "\t" + line.rstrip("\n") + "  \n" for line in t.splitlines(True)).encode(),
}


def convert(capsys, tmp_path, identity, save):
    files = {}
    for name in ("ca", "cert", "key"):
        files[name] = tmp_path / (name + ".pem")
        files[name].write_bytes(save(identity[name].decode()))
    out = tmp_path / "Net_Security.py"
    result = run_netsec(capsys, "convert", "--server-cert", files["cert"], "--server-key",
                        files["key"], "--ca", files["ca"], "--host", "device.local", "-o", out)
    return result, out


@pytest.mark.parametrize("saved_as", SAVED_AS)
def test_a_pem_saved_by_any_common_editor_converts_to_the_same_module(tmp_path, capsys, identity,
                                                                      saved_as):
    (tmp_path / "plain").mkdir()
    (status, _, err), reference = convert(capsys, tmp_path / "plain", identity, SAVED_AS["plain"])
    assert status == 0, err
    (status, _, err), out = convert(capsys, tmp_path, identity, SAVED_AS[saved_as])
    assert status == 0, err
    got, want = load_module(out), load_module(reference)
    for field in ("SERVER_CERT", "SERVER_KEY", "INFO"):
        assert got[field] == want[field], field


@pytest.mark.parametrize("bad, shown", [
    ("\u2013", "U+2013"),   # a word processor's en dash in the armour
    ("\u00a0", "U+00A0"),   # a no-break space pasted from a web page, inside the base64
    ("\ufffd", "U+FFFD"),   # bytes that are not UTF-8 (a Windows-1252 file)
])
def test_a_character_pem_cannot_hold_is_refused_naming_line_and_character(tmp_path, capsys,
                                                                          identity, bad, shown):
    lines = identity["cert"].decode().splitlines(True)
    if bad == "\u2013":
        lines[0] = lines[0].replace("-----", bad * 5)
    else:
        lines[3] = lines[3][:10] + bad + lines[3][10:]
    path = tmp_path / "cert.pem"
    data = "".join(lines).encode()
    path.write_bytes(data.replace(b"\xef\xbf\xbd", b"\x96") if bad == "\ufffd" else data)
    status, _, err = run_netsec(capsys, "inspect", path)
    assert status == 2
    line = 1 if bad == "\u2013" else 4
    assert err.count("\n") == 1, err
    assert "%s line %d: has the character %s" % (path, line, shown) in err, err
    assert "copy the file itself" in err


FLEET = "name,dns,ip\nsensor-1,sensor-1.local,10.0.0.1\n"


@pytest.mark.parametrize("save", [
    lambda t: b"\xef\xbb\xbf" + crlf(t).encode(),   # Excel "CSV UTF-8"
    lambda t: crlf(t).encode("utf-16"),               # Excel "Unicode text"
], ids=["excel-csv-utf8", "utf-16"])
def test_a_fleet_csv_saved_by_excel_is_read(tmp_path, capsys, save):
    csv = tmp_path / "devices.csv"
    csv.write_bytes(save(FLEET))
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "out", "--fleet", csv)
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ca-key.pem", "ca.pem",
                                                                    "sensor-1"]


def test_a_fleet_csv_in_another_encoding_is_refused_naming_it(tmp_path, capsys):
    csv = tmp_path / "devices.csv"
    csv.write_bytes("name,dns\nsensör,s.local\n".encode("cp1252"))
    status, _, err = run_netsec(capsys, "keygen", "-o", tmp_path / "out", "--fleet", csv)
    assert status == 2
    assert err.count("\n") == 1, err
    assert "is not UTF-8 text (byte 0xf6 at offset 13)" in err, err
    assert "save it again as UTF-8" in err


def test_a_module_saved_with_a_byte_order_mark_is_inspected(tmp_path, capsys, identity):
    (status, _, err), out = convert(capsys, tmp_path, identity, SAVED_AS["plain"])
    assert status == 0, err
    out.write_bytes(b"\xef\xbb\xbf" + crlf(out.read_text()).encode())
    status, text, err = run_netsec(capsys, "inspect", out)
    assert status == 0, err
    assert "CN=device.local" in text


def test_a_bundle_of_notepad_files_joined_together_is_read(tmp_path, capsys, identity):
    """`type a.pem b.pem > bundle.pem` (or cat) keeps each file's byte-order mark: one starts a
    line in the middle of the bundle, where it is no more content than the first one."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(SAVED_AS["Notepad UTF-8 (BOM, CRLF)"](identity[name].decode())
                                for name in ("cert", "ca")))
    status, text, err = run_netsec(capsys, "inspect", bundle)
    assert status == 0, err
    assert "CN=device.local" in text and "CN=Encoding CA" in text, text


def test_a_der_certificate_whose_name_reads_begin_is_read_as_der(tmp_path, capsys):
    """DER is told from PEM by its structure, not by looking for "BEGIN" anywhere in the bytes:
    a name such as "BEGIN Consulting" is a DER certificate's content, not PEM armour."""
    ca = cf.ca("BEGIN Consulting Root CA")
    path = tmp_path / "ca.der"
    path.write_bytes(cf.der(ca[0]))
    status, text, err = run_netsec(capsys, "inspect", path)
    assert status == 0, err
    assert "CN=BEGIN Consulting Root CA" in text, text


@pytest.mark.parametrize("lost", [lambda t: t.replace("\n", "\\n"),    # out of JSON, unescaped
                                  lambda t: t.replace("\n", "")],       # line breaks stripped
                         ids=["escaped", "stripped"])
def test_a_pem_without_its_line_breaks_is_refused_saying_so(tmp_path, capsys, identity, lost):
    path = tmp_path / "cert.pem"
    path.write_text(lost(identity["cert"].decode()))
    status, _, err = run_netsec(capsys, "inspect", path)
    assert status == 2
    assert err.count("\n") == 1, err
    assert "%s: has a -----BEGIN line that is not on a line of its own" % path in err, err
    assert "write the PEM with real line breaks" in err
