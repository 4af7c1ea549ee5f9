"""The installed console script: help for every command, one-line errors, no tracebacks."""
import subprocess
import sys
from pathlib import Path

NETSEC = Path(sys.executable).parent / "netsec"


def netsec(*argv):
    return subprocess.run([NETSEC, *argv], capture_output=True, text=True)


def test_console_script_help_reads_well():
    top = netsec("--help")
    assert top.returncode == 0
    for command in ("keygen", "convert", "inspect", "deploy", "flash"):
        assert command in top.stdout
        sub = netsec(command, "--help")
        assert sub.returncode == 0 and sub.stdout.startswith("usage: netsec %s" % command)
    convert_help = netsec("convert", "--help").stdout
    assert "NETSEC_KEY_PASSPHRASE" in convert_help and "DECRYPTED" in convert_help
    bad = netsec("convert", "--client-ca", "/nonexistent.pem")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("netsec convert: error: /nonexistent.pem: cannot read the file")


def test_usage_errors_exit_2():
    for argv in ([], ["frobnicate"], ["keygen"]):
        result = netsec(*argv)
        assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith("netsec")
