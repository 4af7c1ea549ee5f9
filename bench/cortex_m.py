"""Rows 1-3 on the QEMU Cortex-M3 image, in guest instructions: handshake cost, heap per TLS
session, bulk throughput. guest_tls.py does the work inside the guest; this side sets it up,
turns clock ticks into instructions, and runs everything twice (two boots) to show that the
counts repeat exactly."""
import ast
import re
import socket
import ssl
import subprocess
from pathlib import Path

import identities
from netsec_cli import qemu

ROOT = Path(__file__).resolve().parents[1]
BOARD = ROOT / "boards" / "QEMU_MPS2_AN385"
CA_FILE = "/bench/ca.der"
# The guest's clock while files are written (their mtimes are read back by netsec.tls, so they
# must repeat for the instruction counts to repeat).
FILE_DATE = (2040, 1, 1, 6, 0, 0, 0, 0)
HANDSHAKE_PAIRS = 3  # per identity: each a new context's first (cold) and second handshake
SESSION_LIMIT = 40  # bounds the sessions-until-full loop even with a much larger heap
THROUGHPUT_BYTES = 32768
THROUGHPUT_CHUNKS = (1024, 4096)
# Bulk ciphers compared per byte in TLS 1.3 records of the largest chunk.
BULK_SUITES = ("TLS1-3-CHACHA20-POLY1305-SHA256", "TLS1-3-AES-128-GCM-SHA256")
PEAK_PORT = 4433  # the guest's port for served_heap_peak(), forwarded from a free host port


def instructions_per_tick():
    """time.ticks_cpu() counts the board's system clock: at 1 instruction per ns, 1e9/clock."""
    header = (BOARD / "mps2_an385.h").read_text()
    hz = int(re.search(r"#define MPS2_SYSCLK_HZ \((\d+)u?\)", header).group(1))
    if 10**9 % hz:
        raise SystemExit("bench: MPS2_SYSCLK_HZ=%d does not divide 1 GHz; ticks would not be "
                         "whole instructions" % hz)
    return 10**9 // hz


def build_options(image):
    """HEAP_KB and ENTROPY_SEED the image was built with (recorded next to it by the build)."""
    text = (Path(image).parent / "netsec-build-options.txt").read_text()
    return dict(item.split("=", 1) for item in text.split())


def write_files(guest, files):
    """Write {guest path: bytes} with the guest clock at FILE_DATE, all in one go."""
    lines = ["import machine, os, time",
             "time.sleep_ms(1)",  # wake on a clock tick: the same instant on every run
             "machine.RTC().datetime(%r)" % (FILE_DATE,)]
    for path in sorted({p.rsplit("/", 1)[0] for p in files if p.count("/") > 1}):
        lines.append("try:\n    os.mkdir(%r)\nexcept OSError:\n    pass" % path)
    for path, data in sorted(files.items()):
        lines.append("with open(%r, 'wb') as f:\n    f.write(%r)" % (path, data))
    guest.exec("\n".join(lines), timeout=300)


def _call(guest, expression):
    """Evaluate a guest_tls expression on a fresh heap; its value (the last line printed)."""
    guest.soft_reset()
    out = guest.exec("import sys\nsys.path.append('/bench')\nimport guest_tls\n"
                     "print(repr(guest_tls.%s))" % expression, timeout=300)
    return ast.literal_eval(out.strip().splitlines()[-1])


def _mean(values):
    values = list(values)
    return sum(values) // len(values)


def _handshakes(guest, identity, per_tick):
    """Install `identity` as the server's and count HANDSHAKE_PAIRS pairs of handshakes."""
    write_files(guest, {"/netsec-credentials/SERVER_CERT.der": identity.cert_der,
                        "/netsec-credentials/SERVER_KEY.der": identity.key_der,
                        CA_FILE: identity.ca_der})
    cold, warm = [], []
    for _ in range(HANDSHAKE_PAIRS):
        (suite, protocol), (first, second) = _call(guest, "handshakes(%r)" % CA_FILE)
        cold.append(first)
        warm.append(second)
    return {
        "suite": suite, "protocol": protocol,
        "handshake_instructions": {
            "server": _mean(s for s, _ in warm) * per_tick,
            "client": _mean(c for _, c in warm) * per_tick,
            "server_cold": _mean(s for s, _ in cold) * per_tick,
            "client_cold": _mean(c for _, c in cold) * per_tick,
            "each_cold": [(s * per_tick, c * per_tick) for s, c in cold],
            "each_warm": [(s * per_tick, c * per_tick) for s, c in warm],
        },
    }


def _identity_rows(guest, identity, per_tick):
    rows = _handshakes(guest, identity, per_tick)
    held, total_held, free_left, stopped_by = _call(
        guest, "sessions_until_full(%r, %d)" % (CA_FILE, SESSION_LIMIT))
    return dict(rows, heap={
        "handshake_peak_both_ends": _call(guest, "handshake_heap_peak(%r)" % CA_FILE),
        "idle_server_session": _call(guest, "idle_session(%r)" % CA_FILE),
        "sessions_held": held,
        "sessions_heap": total_held,
        "free_after_sessions": free_left,
        "next_session_failed_with": stopped_by,
    })


def _throughput(guest, per_tick):
    results = []
    for chunk in THROUGHPUT_CHUNKS:
        (suite, _), write_ticks, read_ticks = _call(
            guest, "throughput(%r, %d, %d)" % (CA_FILE, THROUGHPUT_BYTES, chunk))
        results.append({"suite": suite, "write_size": chunk, "bytes": THROUGHPUT_BYTES,
                        "encrypt_per_byte": write_ticks * per_tick / THROUGHPUT_BYTES,
                        "decrypt_per_byte": read_ticks * per_tick / THROUGHPUT_BYTES})
    return results


def _install_guest_tls(guest):
    write_files(guest, {"/bench/guest_tls.py": (Path(__file__).parent / "guest_tls.py").read_bytes()})


def _kinds(guest, per_tick):
    """TLS 1.3/1.2 full, resumed and PSK handshakes (EC P-256 identity; P-256, X25519 ECDHE),
    and bulk cost per byte of each of BULK_SUITES: instructions per side."""
    rows = {name: {"suite": suite, "server": st * per_tick, "client": ct * per_tick}
            for name, (suite, st, ct) in _call(guest, "handshake_kinds(%r)" % CA_FILE).items()}
    chunk = max(THROUGHPUT_CHUNKS)
    for suite in BULK_SUITES:
        _, write_ticks, read_ticks = _call(
            guest, "throughput(%r, %d, %d, %r)" % (CA_FILE, THROUGHPUT_BYTES, chunk, suite))
        rows["bulk " + suite] = {"encrypt_per_byte": write_ticks * per_tick / THROUGHPUT_BYTES,
                                 "decrypt_per_byte": read_ticks * per_tick / THROUGHPUT_BYTES}
    return rows


def served_heap_peak(image, identity):
    """Peak heap of the server side alone during one handshake (bytes): the guest serves on
    QEMU's network (no -icount: the peak does not depend on timing), a verifying CPython
    client on the host connects and sends b"ping"."""
    with qemu.Guest(image, network=qemu.GuestNetwork(hostfwd={PEAK_PORT: 0})) as guest:
        write_files(guest, {"/bench/guest_tls.py": (Path(__file__).parent / "guest_tls.py").read_bytes(),
                            "/netsec-credentials/SERVER_CERT.der": identity.cert_der,
                            "/netsec-credentials/SERVER_KEY.der": identity.key_der})
        guest.soft_reset()
        guest.start("import sys\nsys.path.append('/bench')\nimport guest_tls\n"
                    "print(repr(guest_tls.served_heap_peak(%d)))" % PEAK_PORT, ready="listening")
        context = ssl.create_default_context(cadata=identity.ca_der)
        with socket.create_connection(("127.0.0.1", guest.host_port(PEAK_PORT)), timeout=60) as raw:
            with context.wrap_socket(raw, server_hostname=identities.HOSTNAME) as tls_socket:
                tls_socket.sendall(b"ping")
                out, err = guest.finish(timeout=60)
        if err:
            raise SystemExit("bench: the guest's server raised:\n%s" % err)
        return ast.literal_eval(out.strip().splitlines()[-1])


def measure_once(image, ec, rsa):
    """One boot of the image: every row-1-3 figure for both server identities."""
    per_tick = instructions_per_tick()
    with qemu.Guest(image, icount=True) as guest:
        _install_guest_tls(guest)
        rows = {ec.name: _identity_rows(guest, ec, per_tick)}
        rows["throughput"] = _throughput(guest, per_tick)  # with the EC identity, still in place
        rows["kinds"] = _kinds(guest, per_tick)
        rows[rsa.name] = _identity_rows(guest, rsa, per_tick)
        rows["qemu"] = " ".join(qemu.qemu_command(image, icount=True))
        return rows


def measure(image):
    """measure_once() on two boots; the first's figures, and whether the second's matched."""
    ec, rsa = identities.ec_p256(), identities.rsa_2048()
    first = measure_once(image, ec, rsa)
    second = measure_once(image, ec, rsa)
    first["repeatable"] = first == second
    if not first["repeatable"]:
        first["second_boot"] = second
    for identity in (ec, rsa):
        first[identity.name]["heap"]["handshake_peak_server"] = served_heap_peak(image, identity)
    first["build"] = build_options(image)
    first["instructions_per_tick"] = instructions_per_tick()
    return first


def thumb_isa(image):
    """The Thumb instruction set an ELF's code uses (its Tag_THUMB_ISA_use attribute): Thumb-1
    for Armv6-M code, Thumb-2 for the Cortex-M3's."""
    out = subprocess.run(["arm-none-eabi-readelf", "-A", str(image)], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return re.search(r"Tag_THUMB_ISA_use: (\S+)", out).group(1)


def measure_handshakes(image):
    """Row 7: only the handshake counts (row 1's), on one boot, for both server identities; with
    the Thumb instruction set the image's code uses."""
    per_tick = instructions_per_tick()
    with qemu.Guest(image, icount=True) as guest:
        _install_guest_tls(guest)
        rows = {identity.name: _handshakes(guest, identity, per_tick)
                for identity in (identities.ec_p256(), identities.rsa_2048())}
    rows["thumb_isa"] = thumb_isa(image)
    return rows
