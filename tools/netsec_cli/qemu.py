"""Boot a netsec QEMU image (mps2-an385 Cortex-M3, mps2-an386 Cortex-M4) with its console on a pty.

    python -m netsec_cli.qemu --image build/qemu/MPS2_AN385/firmware.elf [--icount] [--https-port N]

prints the `mpremote connect /dev/pts/N` line to use and runs until Ctrl-C (or until the guest
calls machine.reset(), which ends QEMU). Tests and `make run` call boot() instead.

The guest reads the host's clock at power-on through semihosting, which is why QEMU runs with
semihosting enabled. --icount makes QEMU count one virtual nanosecond per instruction
(-icount shift=0,sleep=off): runs then repeat exactly, which benchmarks want; the guest's clock then
follows virtual time and drifts from the host's.

The network (the board's LAN9118, driven by lwIP in the guest): a GuestNetwork is QEMU's user-mode
network with restrict=on, so the guest reaches nothing but what is forwarded: `hostfwd` ports on
127.0.0.1 lead to the guest's listening ports, `guestfwd` addresses in the guest lead to services
on the host's loopback (each guest connection runs tools/netsec_cli/tcprelay.py). The guest gets
its address from QEMU's DHCP server (10.0.2.15). Without a GuestNetwork the board has no network
(-nic none): its NIC is there but no frame ever arrives.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from netsec_cli.device import Device
from netsec_cli.process import stop_process

QEMU = "qemu-system-arm"
MACHINE = "mps2-an385"
# The guest's view of QEMU's user network.
GUEST_ADDRESS = "10.0.2.15"
GUEST_SERVICES = "10.0.2.100"  # where guestfwd puts host services
DEFAULT_IMAGE = Path(__file__).resolve().parents[2] / "build" / "qemu" / "MPS2_AN385" / "firmware.elf"
_PTY_LINE = re.compile(rb"char device redirected to (/dev/pts/\d+)")


class QemuError(Exception):
    """QEMU could not be started, or the guest did not come up; the message says what to do."""


def free_port():
    """A TCP port on 127.0.0.1 that is free now (the kernel's choice, so parallel runs differ)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GuestNetwork:
    """QEMU's user-mode network for the guest, restricted to forwarded ports.

    hostfwd: {guest TCP port: host port on 127.0.0.1} (host port 0: pick a free one; read the
    choice from .hostfwd afterwards). guestfwd: {guest TCP port at GUEST_SERVICES: host port on
    127.0.0.1}. UDP cannot be forwarded into the host this way (guestfwd is TCP only).

    netns: the name of a network namespace (`ip netns add`) to run QEMU in, unrestricted: the
    guest then reaches what listens on that namespace's loopback at 10.0.2.2 (UDP too: SNTP)
    and QEMU's DNS proxy at 10.0.2.3 asks the namespace's resolv.conf (/etc/netns/NAME/). A
    namespace with only a loopback has no way out of this machine, which is why only it may
    lift the restriction. Its hostfwd ports are on that namespace's 127.0.0.1.
    """

    def __init__(self, hostfwd=None, guestfwd=None, netns=None):
        self.hostfwd = {g: (h or free_port()) for g, h in (hostfwd or {}).items()}
        self.guestfwd = dict(guestfwd or {})
        self.netns = netns

    def command_prefix(self):
        """What QEMU's command line starts with: entering the namespace, if any."""
        return ["ip", "netns", "exec", self.netns] if self.netns else []

    def nic_option(self):
        parts = ["user", "model=lan9118", "restrict=%s" % ("off" if self.netns else "on")]
        parts += ["hostfwd=tcp:127.0.0.1:%d-:%d" % (h, g) for g, h in self.hostfwd.items()]
        relay = "%s %s" % (sys.executable, Path(__file__).with_name("tcprelay.py"))
        parts += ["guestfwd=tcp:%s:%d-cmd:%s %d" % (GUEST_SERVICES, g, relay, h)
                  for g, h in self.guestfwd.items()]
        return ",".join(parts)


def machine_for(image):
    """The QEMU machine an image is built for, from its build directory (build/qemu/MPS2_AN386/;
    build/qemu/MPS2_AN385_ARMV6M/ is Armv6-M code on the mps2-an385)."""
    board = Path(image).parent.name
    return "-".join(board.lower().split("_")[:2]) if board.startswith("MPS2_") else MACHINE


def qemu_command(image, icount=False, network=None):
    """The qemu-system-arm command line that runs `image` with the console UART on a pty, on
    `network` (a GuestNetwork) or with no network at all; icount: False, True
    (shift=0,sleep=off) or the text of QEMU's -icount option."""
    command = [
        QEMU, "-machine", machine_for(image), "-kernel", str(image),
        "-nic", network.nic_option() if network else "none",
        "-display", "none", "-monitor", "none", "-serial", "pty",
        # The guest's real-time clock starts from the host's (semihosting SYS_TIME).
        "-semihosting-config", "enable=on,target=native",
    ]
    if icount:
        # shift=0: one instruction per virtual nanosecond. sleep=off: an idle guest (WFI) jumps
        # straight to the next timer deadline instead of following the host's clock, so it
        # wakes at the same virtual instant on every run. A string gives other -icount options
        # (bench/cortex_m_https.py: sleep on, so the guest's timers follow the host's clock).
        command += ["-icount", icount if isinstance(icount, str) else "shift=0,sleep=off"]
    return command


def _die_with_parent():
    """In the QEMU child (Linux): get SIGTERM when the process that booted it ends, however
    it ends, so a crashed or killed test run leaves no QEMU behind."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class _QemuOutput(threading.Thread):
    """Drains QEMU's own output (so it never blocks on a full pipe), keeps it, finds the pty."""

    def __init__(self, stream, log_path):
        super().__init__(daemon=True)
        self.stream = stream
        self.log_path = log_path
        self.text = b""
        self.pty = None
        self.settled = threading.Event()  # the pty is known, or QEMU has exited

    def run(self):
        with open(self.log_path, "wb") if self.log_path else open(os.devnull, "wb") as log:
            for line in self.stream:
                self.text += line
                log.write(line)
                log.flush()
                match = _PTY_LINE.search(line)
                if match and self.pty is None:
                    self.pty = match.group(1).decode()
                    self.settled.set()
        self.settled.set()


class RunningImage:
    """A QEMU process running the image: `.pty` is the console, `.stop()` ends it."""

    def __init__(self, process, output):
        self.process = process
        self.output = output
        self.pty = output.pty

    def alive(self):
        return self.process.poll() is None

    def log(self):
        """What QEMU itself printed (not the guest's console), for error messages."""
        return self.output.text.decode(errors="replace")

    def gone(self):
        """Why the guest cannot answer (QEMU exited, with what it said), or None while it runs."""
        if self.alive():
            return None
        return "QEMU exited with status %s; it said:\n%s" % (self.process.returncode, self.log())

    def stop(self, timeout=5):
        stop_process(self.process, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def boot(image=DEFAULT_IMAGE, icount=False, log_path=None, timeout=10, network=None):
    """Start QEMU on `image` and return a RunningImage once the console's pty is known.

    QEMU ends when the thread that called boot() ends (call it from the main thread).

    QEMU's own messages are kept (RunningImage.log()) and also written to `log_path` if given.
    The guest needs a moment more to reach its REPL: see wait_for_repl().
    """
    if not shutil.which(QEMU):
        raise QemuError("%s not found: run `make deps` (it installs Debian's qemu-system-arm)" % QEMU)
    image = Path(image)
    if not image.is_file():
        raise QemuError("QEMU image %s not found: build it with `make qemu-image`" % image)
    command = (network.command_prefix() if network else []) + qemu_command(image, icount, network)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    output = _QemuOutput(process.stdout, log_path)
    output.start()
    output.settled.wait(timeout)
    if output.pty is None:
        process.kill()
        process.wait()
        output.join(1)
        raise QemuError("QEMU did not start a console on a pty (command: %s). It said:\n%s"
                        % (" ".join(command), output.text.decode(errors="replace") or "(nothing)"))
    return RunningImage(process, output)


def wait_for_repl(running, timeout=10):
    """Wait until the guest's friendly REPL answers on the pty; return the seconds it took."""
    import serial  # pyserial comes with mpremote

    start = time.monotonic()
    with serial.Serial(running.pty, 115200, timeout=0.1) as console:
        received = b""
        next_poke = start
        while time.monotonic() - start < timeout:
            if not running.alive():
                raise QemuError("QEMU exited while booting. Its log:\n%s\nConsole:\n%s"
                                % (running.log(), received.decode(errors="replace")))
            if time.monotonic() >= next_poke:
                console.write(b"\x02")  # Ctrl-B: (re)print the banner and a ">>> " prompt
                next_poke += 1.0
            received += console.read(256)
            if b">>> " in received[-64:]:
                return time.monotonic() - start
    raise QemuError("the guest's REPL did not answer on %s within %d s. Console so far:\n%s"
                    % (running.pty, timeout, received.decode(errors="replace")))


class Guest(Device):
    """The image booted and its REPL connected: a Device that also owns QEMU.

    close() releases the console (QEMU goes on, for mpremote); stop() also ends QEMU, as leaving
    a `with` block does. The console is opened non-exclusively, so the mpremote tool and netsec
    deploy can use the pty while a Guest holds it. network: a GuestNetwork, or None for no
    network. Raises QemuError or DeviceError.
    """

    def __init__(self, image=DEFAULT_IMAGE, icount=False, log_path=None, network=None):
        self.network = network
        self.running = boot(image, icount=icount, log_path=log_path, network=network)
        try:
            wait_for_repl(self.running)
            super().__init__(self.running.pty, exclusive=False, gone=self.running.gone)
        except BaseException:
            self.running.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def host_port(self, guest_port):
        """The 127.0.0.1 port that leads to the guest's TCP guest_port (its network's hostfwd)."""
        return self.network.hostfwd[guest_port]

    def stop(self):
        try:
            self.close()
        finally:
            self.running.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m netsec_cli.qemu",
        description="Boot the netsec QEMU image with its console on a pty, for mpremote.")
    parser.add_argument("--image", default=str(DEFAULT_IMAGE),
                        help="firmware.elf to boot (default: %(default)s)")
    parser.add_argument("--icount", action="store_true",
                        help="deterministic virtual time (-icount shift=0,sleep=off), for benchmarks")
    parser.add_argument("--log", help="write QEMU's own messages to this file")
    args = parser.parse_args(argv)
    # Being killed must still stop QEMU: turn SIGTERM/SIGHUP into an exit that runs cleanup.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, frame: sys.exit(128 + signum))
    try:
        running = boot(args.image, icount=args.icount, log_path=args.log)
    except QemuError as e:
        print("netsec qemu: error: %s" % e, file=sys.stderr)
        return 2
    with running:
        try:
            seconds = wait_for_repl(running)
        except QemuError as e:
            print("netsec qemu: error: %s" % e, file=sys.stderr)
            return 2
        print("QEMU %s is running %s (pid %d); REPL up after %.1f s."
              % (MACHINE, args.image, running.process.pid, seconds))
        print("Connect with:\n\n    mpremote connect %s\n" % running.pty)
        print("Stop with Ctrl-C here (or machine.reset() in the guest).", flush=True)
        try:
            status = running.process.wait()
        except KeyboardInterrupt:
            return 0
        print("QEMU exited with status %d" % status)
        return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
