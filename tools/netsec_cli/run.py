"""`make run`: the main job on the credentials the image froze in, served by the Cortex-M3.

    python -m netsec_cli.run [--check] [--port N] [--host-image] [--credentials FILE]

Boots the networked QEMU Cortex-M3 image (mps2-an385, lwIP on its LAN9118) and starts the HTTPS
demo (netsec.demo) in it; QEMU forwards https://localhost:8443 to the guest's port 443. Prints
the URL, the curl line that verifies it, and the mpremote line for the guest's console (the
demo's log is there; Ctrl-C in it stops the demo and gives the REPL). Runs until Ctrl-C.
--host-image serves the demo from the host (unix) image instead (`make run-unix`). With --check
it fetches the page once with verification on and exits: 0 if all is well.

The URL names the server certificate's first name (curl's --resolve takes it to 127.0.0.1) and
curl trusts the module's SERVER_CA: with your own credentials you verify your own name and CA.
"""
import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from netsec_cli import inspect, qemu
from netsec_cli.device import DeviceError
from netsec_cli.problems import CliError
from netsec_cli.process import stop_process

ROOT = Path(__file__).resolve().parents[2]
UNIX_IMAGE = ROOT / "build" / "unix" / "micropython"
DEFAULT_CA = ROOT / "tests" / "certs" / "default" / "ca.pem"
# The host demo's "flash": its static files live here, outside the source tree.
FLASH = ROOT / "build" / "run" / "flash"
PORT = 8443
# Typed at the guest's friendly REPL, so Ctrl-C there ends the demo at a ">>>" prompt.
GUEST_DEMO = "from netsec import lan, demo; lan.up(); demo.main()"
READY = "https server on"


class RunError(Exception):
    pass


def start_demo(port, image=UNIX_IMAGE):
    """Start netsec.demo on the host image; return once it says it is listening."""
    if not Path(image).is_file():
        raise RunError("%s not found: build it with `make unix`" % image)
    FLASH.mkdir(parents=True, exist_ok=True)
    demo = subprocess.Popen([str(image), "-m", "netsec.demo", str(port)], cwd=FLASH,
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


def demo_in_qemu(port, image=qemu.DEFAULT_IMAGE):
    """Boot the QEMU image on a network with 127.0.0.1:port leading to its port 443, and start
    the demo at its REPL; return the running image once the demo listens."""
    guest = qemu.Guest(image, network=qemu.GuestNetwork(hostfwd={443: port}))
    try:
        said = guest.start_in_repl(GUEST_DEMO, READY)
        guest.close()  # the console is the user's now; QEMU and the demo go on
    except BaseException:
        guest.stop()
        raise
    for line in said.splitlines()[1:]:
        print("  guest| " + line)
    return guest.running


def verifier(credentials, port):
    """(url, curl arguments) that verify the demo as the module's own names and CA say."""
    try:
        constants = inspect.read_module(str(credentials))
    except CliError as e:
        raise RunError(str(e))
    sans = ((constants.get("INFO") or {}).get("SERVER_CERT") or {}).get("sans", [])
    sans = sorted(sans, key=lambda n: not n.startswith("DNS:"))  # a name first, else an address
    if not sans or not constants.get("SERVER_CA"):
        raise RunError("%s has no server names or no SERVER_CA (the CA its SERVER_CERT chains to): "
                       "make it again with netsec convert" % credentials)
    name = sans[0].split(":", 1)[1]
    server_ca = x509.load_der_x509_certificate(constants["SERVER_CA"])
    ca = DEFAULT_CA
    if x509.load_pem_x509_certificate(DEFAULT_CA.read_bytes()) != server_ca:
        ca = ROOT / "build" / "run" / "server-ca.pem"
        ca.parent.mkdir(parents=True, exist_ok=True)
        ca.write_bytes(server_ca.public_bytes(serialization.Encoding.PEM))
    host = "[%s]" % name if ":" in name else name
    args = ["--cacert", str(ca.relative_to(ROOT))]
    # The demo is reached on 127.0.0.1: curl is told to connect there for the certificate's name.
    if name not in ("localhost", "127.0.0.1"):
        if sans[0].startswith("DNS:"):
            args += ["--resolve", "%s:%d:127.0.0.1" % (name, port)]
        else:
            args += ["--connect-to", "%s:%d:127.0.0.1:%d" % (host, port, port)]
    return "https://%s:%d/" % (host, port), args


def check(url, curl_args):
    """Fetch the page the way the printed curl line does: CA and hostname verified."""
    out = subprocess.run(["curl", "-sS", "--max-time", "20"] + curl_args + [url], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode or "netsec" not in out.stdout:
        raise RunError("curl could not fetch %s: %s" % (url, out.stderr.strip()))
    print("check: %s served its status page, verified against %s" % (url, curl_args[1]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m netsec_cli.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fetch the page once, then stop everything")
    parser.add_argument("--port", type=int, default=PORT, help="HTTPS port on 127.0.0.1 (default %(default)s)")
    parser.add_argument("--host-image", action="store_true",
                        help="serve from the host (unix) image instead of the QEMU Cortex-M3")
    parser.add_argument("--image", type=Path,
                        help="the image to run (default: %s, or with --host-image %s)"
                        % (qemu.DEFAULT_IMAGE.relative_to(ROOT), UNIX_IMAGE.relative_to(ROOT)))
    parser.add_argument("--credentials", type=Path,
                        help="the Net_Security.py the image froze in (default: the copy in the "
                        "image's build directory, credentials/Net_Security.py)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    demo = running = None
    image = args.image or (UNIX_IMAGE if args.host_image else qemu.DEFAULT_IMAGE)
    credentials = args.credentials or image.parent / "credentials" / "Net_Security.py"
    try:
        url, curl_args = verifier(credentials, args.port)
        if args.host_image:
            demo = start_demo(args.port, image)
            print("\nHTTPS demo on the host image: %s" % url)
        else:
            running = demo_in_qemu(args.port, image)
            print("\nHTTPS demo on the QEMU Cortex-M3 (mps2-an385, lwIP): %s" % url)
        print("  verify it:     curl %s %s" % (" ".join(curl_args), url))
        if running:
            print("  its console:   mpremote connect %s   (Ctrl-C there stops the demo)" % running.pty)
        if args.check:
            check(url, curl_args)
            return 0
        print("Stop with Ctrl-C.", flush=True)
        (demo or running.process).wait()
        return 1
    except (RunError, qemu.QemuError, DeviceError) as e:
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
