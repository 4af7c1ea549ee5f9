"""The README's "Your own certificates" section, followed literally (issue 13, cases 12-14):
keygen -> convert -> make the images -> the self-check (netsec.selftest, with the module's own
name and CA) -> make run (the demo served by the QEMU Cortex-M3) -> the README's curl line
verifies it.

Every command comes from the README's ```sh blocks of that section, run as written in a scratch
project directory. Only what keeps the test apart from the project and from other runs is added
to each `make`: its build directories (shared with test_cli_e2e.py, so rebuilds are
incremental), where it remembers the NET_SECURITY choice, and a free port instead of 8443.
"""
import hashlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness import require_tool
from mpy import free_port

pytestmark = [pytest.mark.device, pytest.mark.qemu]

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BUILD = ROOT / "build" / "test-cli-e2e"
BIN = Path(sys.executable).parent  # netsec is installed next to this Python (make deps)


def readme_commands(section="## Your own certificates"):
    """The shell commands of the section's ```sh blocks, continuation lines joined."""
    text = README.read_text().split(section, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        commands += [line.strip() for line in block.replace("\\\n", " ").splitlines()
                     if line.strip()]
    return commands


class Project:
    def __init__(self, scratch):
        self.scratch = scratch
        self.port = free_port()
        self.isolation = ["UNIX_BUILD=%s" % (BUILD / "unix"), "QEMU_BUILD=%s" % (BUILD / "qemu"),
                          "CREDENTIALS_CHOICE=%s" % (scratch / "credentials-choice"),
                          "RUN_PORT=%d" % self.port]
        # A fresh shell: nothing inherited from a `make test ...` this test may run under (its
        # MAKEFLAGS would carry that command line's NET_SECURITY into every make here).
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "NET_SECURITY")}
        self.env["PATH"] = "%s:%s" % (BIN, os.environ["PATH"])

    def shell(self, command):
        """The README command as bash runs it in the project directory."""
        if command.startswith("make "):
            command = "make -C %s %s %s" % (ROOT, command[5:], " ".join(self.isolation))
        return ["bash", "-c", command.replace("8443", str(self.port))]

    def run(self, command, timeout=900):
        done = subprocess.run(self.shell(command), cwd=self.scratch, env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        assert done.returncode == 0, "README command failed: %s\n%s" % (command,
                                                                         done.stdout[-4000:])
        return done.stdout

    def start(self, command, until, timeout=900):
        """Start a command that runs until stopped; return (process, its output up to `until`)."""
        process = subprocess.Popen(self.shell(command), cwd=self.scratch, env=self.env,
                                   text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # its own group: stopped as one
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in process.stdout] + [lines.put("")],
                         daemon=True).start()
        output, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            output.append(line)
            if until in line:
                return process, "".join(output)
            if not line:
                break
        stop(process)
        pytest.fail("README command %r did not reach %r:\n%s" % (command, until,
                                                                    "".join(output)[-4000:]))


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_readme_own_certificates_section_works_as_written(tmp_path):
    require_tool("curl")
    commands = readme_commands()
    assert [c.split()[:2] for c in commands] == [
        ["netsec", "keygen"], ["netsec", "convert"], ["make", "unix"], ["make", "run"],
        ["curl", "--cacert"]], "the README section changed: update this test\n%s" % commands
    keygen, convert, build, serve, verify = commands
    project = Project(tmp_path)
    project.run(keygen)
    project.run(convert)
    built = project.run(build)

    # Case 14: the build says what it froze in; the decrypted key's copies are private.
    cert = x509.load_pem_x509_certificate((tmp_path / "certs" / "server.pem").read_bytes())
    fingerprint = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    module = tmp_path / "build" / "sensor-7" / "Net_Security.py"
    for image in ("unix", "qemu"):
        said = "%s freezes in %s: SERVER_CERT CN=sensor-7.local sha256 %s (NET_SECURITY=" % (
            (BUILD / image).relative_to(ROOT), module, fingerprint)
        assert said in built, built[-4000:]
        assert (BUILD / image).stat().st_mode & 0o777 == 0o700
        assert (BUILD / image / "credentials" / "Net_Security.py").stat().st_mode & 0o777 == 0o600

    # Case 12: the self-check uses the module's own name and CA (SERVER_CA).
    checked = subprocess.run([str(BUILD / "unix" / "micropython"), "-c",
                              "from netsec import selftest; selftest.run()"],
                             capture_output=True, text=True, timeout=60)
    assert re.search(r"selftest: OK TLSv1\.[23] \S+ peer=CN=sensor-7\.local verified as "
                     r"'sensor-7\.local'", checked.stdout), checked.stdout + checked.stderr

    # Case 13: a plain `make run` keeps the choice and serves it from the Cortex-M3; the README's
    # curl line verifies the demo against the user's CA for the user's name.
    process, output = project.start(serve, "Stop with Ctrl-C.")
    try:
        assert "freezes in %s" % module in output and "remembered in" in output, output
        assert ("--resolve sensor-7.local:%d:127.0.0.1 https://sensor-7.local:%d/"
                % (project.port, project.port)) in output, output
        page = project.run(verify, timeout=60)
        assert "netsec" in page and "sensor-7.local" in page, page
    finally:
        stop(process)
