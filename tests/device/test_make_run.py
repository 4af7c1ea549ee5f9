"""`make run`: the demo served by the networked QEMU Cortex-M3 image, verified by the printed
curl line; `make run-unix`: the same demo from the host image."""
import subprocess
import sys

from mpy import free_port


def run_check(*extra):
    port = free_port()
    out = subprocess.run([sys.executable, "-m", "netsec_cli.run", "--check", "--port", str(port)]
                         + list(extra), capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "curl --cacert tests/certs/default/ca.pem https://localhost:%d/" % port in out.stdout
    assert "served its status page, verified" in out.stdout
    return out.stdout


def test_make_run_serves_the_demo_from_the_cortex_m3(qemu_image):
    printed = run_check()
    assert "QEMU Cortex-M3 (mps2-an385, lwIP)" in printed
    assert "mpremote connect /dev/pts/" in printed


def test_make_run_unix_serves_the_demo_from_the_host_image(unix_image):
    printed = run_check("--host-image")
    assert "HTTPS demo on the host image" in printed
