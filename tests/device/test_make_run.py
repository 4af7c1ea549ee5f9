"""`make run`: the QEMU image passes its TLS self-check and the host image serves the demo."""
import subprocess
import sys

from mpy import free_port


def test_make_run_reaches_its_running_state(unix_image, qemu_image):
    port = free_port()
    out = subprocess.run([sys.executable, "-m", "netsec_cli.run", "--check", "--port", str(port)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "selftest: OK TLSv1.2" in out.stdout
    assert "mpremote connect /dev/pts/" in out.stdout
    assert "curl --cacert tests/certs/default/ca.pem https://localhost:%d/" % port in out.stdout
    assert "served its status page, verified" in out.stdout
