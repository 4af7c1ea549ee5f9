"""`make run`: the main job on the default credentials.

    python -m netsec_cli.run [--check]

Starts the HTTPS demo (netsec.demo) on the host image at https://127.0.0.1:8443, and boots the
QEMU Cortex-M3 image, runs the TLS self-check in it (netsec.selftest) and leaves its REPL for
mpremote. Prints the URL, the curl line that verifies it, and the mpremote line, then runs until
Ctrl-C. With --check it fetches the page once with verification on and exits: 0 if all is well.
"""
import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from mpremote.transport_serial import SerialTransport

from netsec_cli import qemu
from netsec_cli.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
UNIX_IMAGE = ROOT / "build" / "unix" / "micropython"
CA = ROOT / "tests" / "certs" / "default" / "ca.pem"
# The demo's "flash": its static files live here, outside the source tree.
FLASH = ROOT / "build" / "run" / "flash"
PORT = 8443


class RunError(Exception):
    pass


def start_demo(port):
    """Start netsec.demo on the host image; return once it says it is listening."""
    if not UNIX_IMAGE.is_file():
        raise RunError("%s not found: build it with `make unix`" % UNIX_IMAGE)
    FLASH.mkdir(parents=True, exist_ok=True)
    demo = subprocess.Popen([str(UNIX_IMAGE), "-m", "netsec.demo", str(port)], cwd=FLASH,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in demo.stdout:
        print("  demo| " + line, end="")
        if "https server on" in line:
            # From now on its log goes straight through, without blocking on a full pipe.
            threading.Thread(target=_forward, args=(demo.stdout,), daemon=True).start()
            return demo
    demo.wait()
    raise RunError("the demo exited with status %d (is port %d in use?)" % (demo.returncode, port))


def _forward(stream):
    for line in stream:
        print("  demo| " + line, end="", flush=True)


def selftest_in_qemu():
    """Boot the QEMU image and run netsec.selftest in it; return (running image, report)."""
    running = qemu.boot()
    try:
        qemu.wait_for_repl(running)
        transport = SerialTransport(running.pty, exclusive=False)
        try:
            transport.enter_raw_repl(soft_reset=False)
            out, err = transport.exec_raw("import netsec.selftest\nnetsec.selftest.run()", timeout=60)
            transport.exit_raw_repl()
        finally:
            transport.close()
        if err:
            raise RunError("the TLS self-check failed in the QEMU image:\n" + err.decode(errors="replace"))
        return running, out.decode(errors="replace").strip()
    except BaseException:
        running.stop()
        raise


def check(url):
    """Fetch the page the way the printed curl line does: CA and hostname verified."""
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", str(CA), url],
                         capture_output=True, text=True)
    if out.returncode or "netsec" not in out.stdout:
        raise RunError("curl could not fetch %s: %s" % (url, out.stderr.strip()))
    print("check: %s served its status page, verified against %s" % (url, CA.relative_to(ROOT)))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m netsec_cli.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fetch the page once, then stop everything")
    parser.add_argument("--port", type=int, default=PORT, help="HTTPS port on 127.0.0.1 (default %(default)s)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    demo = running = None
    try:
        running, report = selftest_in_qemu()
        demo = start_demo(args.port)
        url = "https://localhost:%d/" % args.port
        print("\nQEMU Cortex-M3 image, TLS self-check:\n  " + report.replace("\n", "\n  "))
        print("  its REPL:      mpremote connect %s" % running.pty)
        print("HTTPS demo on the host image: %s" % url)
        print("  verify it:     curl --cacert %s %s" % (CA.relative_to(ROOT), url))
        if args.check:
            check(url)
            return 0
        print("Stop with Ctrl-C.", flush=True)
        demo.wait()
        return 1
    except (RunError, qemu.QemuError) as e:
        print("make run: error: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if demo:
            stop_process(demo)
        if running:
            running.stop()


if __name__ == "__main__":
    sys.exit(main())
