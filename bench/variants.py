"""The mbedTLS speed and memory settings, weighed one change at a time (issue 14).

Each variant is the shipped profile plus a few lines of mbedTLS configuration, given to mbedTLS
as its MBEDTLS_USER_CONFIG_FILE (read after the profile), and optionally another list of files
built at -O2 (speed.mk's NETSEC_MBEDTLS_SPEED_FILES) or more mbedTLS files (sources.mk's
NETSEC_MBEDTLS_BENCH_SRC). Every variant of a board is built into the same directory,
build/bench/variants/<board>/, so a switch recompiles only what the header or the file list
touches; the image is booted under -icount and measured with the EC P-256 identity:
instructions per side of a full TLS 1.3 handshake, per byte of bulk data in each TLS 1.3 AEAD,
heap of a handshake and of an idle session, and the image's text. Boards: the QEMU Cortex-M3
(MPS2_AN385), Cortex-M4 (MPS2_AN386) and Armv6-M (MPS2_AN385_ARMV6M) images. Results
accumulate in build/bench/variants-<board>.json.

    .venv/bin/python bench/variants.py --board MPS2_AN386 before asm
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import cortex_m
import footprint
import identities
from netsec_cli import qemu

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "build" / "bench"
# speed.mk's list of files built at -O2, and more files measured and not kept.
SPEED_FILES = re.search(r"^NETSEC_MBEDTLS_SPEED_FILES = (.*)$",
                        (ROOT / "firmware" / "mbedtls" / "speed.mk").read_text(), re.M).group(1)
SPEED_FILES_MORE = "sha256 ecdsa md cipher ssl_msg"

# The kept changes in the order they were added: (name, what it adds, the configuration lines
# that take it out again). Each of these variants is the shipped profile less every later one.
NO_IDLE = "#undef MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH\n#undef MBEDTLS_SSL_MAX_FRAGMENT_LENGTH"
NO_KEPT_BLOCKS = ("#undef MBEDTLS_PLATFORM_STD_CALLOC\n#undef MBEDTLS_PLATFORM_STD_FREE\n"
                  "#define MBEDTLS_PLATFORM_STD_CALLOC m_tracked_calloc\n"
                  "#define MBEDTLS_PLATFORM_STD_FREE m_tracked_free")
KEPT = (
    ("asm", "+ MBEDTLS_HAVE_ASM", "#undef MBEDTLS_HAVE_ASM"),
    ("idle-buffers", "+ idle sessions give back their record buffers", NO_IDLE),
    ("kept-blocks", "+ mbedTLS's freed small blocks kept for reuse", NO_KEPT_BLOCKS),
    ("fewer-tables", "+ MBEDTLS_AES_FEWER_TABLES", "#undef MBEDTLS_AES_FEWER_TABLES"),
    ("shipped", "+ MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS (shipped)",
     "#undef MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS"),
)


def _without_after(name):
    """Configuration lines taking out every kept change after `name` ("before": all of them)."""
    names = [k[0] for k in KEPT]
    start = names.index(name) + 1 if name in names else 0
    return "\n".join(k[2] for k in KEPT[start:])


# mbedTLS's p256-m driver: its switch and its files (sources.mk builds them for a variant).
P256M = "#define MBEDTLS_PSA_P256M_DRIVER_ENABLED"
P256M_FILES = {"NETSEC_MBEDTLS_BENCH_SRC": " ".join(
    "lib/mbedtls/3rdparty/p256-m/" + f for f in ("p256-m_driver_entrypoints.c", "p256-m/p256-m.c"))}

# name -> (what it is, configuration lines, make variables). After the kept steps, the
# changes measured and not kept, each against the variant its description names.
VARIANTS = {"before": ("the TLS engine's profile before issue 14", _without_after("before"), {})}
VARIANTS.update((name, (what, _without_after(name), {})) for name, what, _ in KEPT)
VARIANTS.update({
    "no-asm": ("shipped without MBEDTLS_HAVE_ASM", "#undef MBEDTLS_HAVE_ASM", {}),
    "p256m": ("shipped + p256-m (mbedTLS's small P-256) as PSA driver", P256M, P256M_FILES),
    "p256m-O2": ("shipped + p256-m as PSA driver, built at -O2", P256M,
                 dict(P256M_FILES, NETSEC_MBEDTLS_BENCH_CFLAGS="-O2")),
    "no-fewer-tables": ("shipped without MBEDTLS_AES_FEWER_TABLES",
                        "#undef MBEDTLS_AES_FEWER_TABLES", {}),
    "speed-files": ("asm + SHA-256, ECDSA, MD, cipher, record layer at -O2",
                    _without_after("asm"),
                    {"NETSEC_MBEDTLS_SPEED_FILES": SPEED_FILES + " " + SPEED_FILES_MORE}),
    "no-fixed-point": ("kept-blocks, MBEDTLS_ECP_FIXED_POINT_OPTIM 0",
                       _without_after("kept-blocks") + "\n#undef MBEDTLS_ECP_FIXED_POINT_OPTIM\n"
                       "#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0", {}),
    "window-3": ("kept-blocks, MBEDTLS_ECP_WINDOW_SIZE 3", _without_after("kept-blocks")
                 + "\n#undef MBEDTLS_ECP_WINDOW_SIZE\n#define MBEDTLS_ECP_WINDOW_SIZE 3", {}),
    "gcm-large-table": ("kept-blocks + MBEDTLS_GCM_LARGE_TABLE",
                        _without_after("kept-blocks") + "\n#define MBEDTLS_GCM_LARGE_TABLE", {}),
})


def _flagged_objects(build):
    """The objects whose flags a variant may change: speed.mk's and sources.mk's bench files."""
    names = set(SPEED_FILES.split()) | set(SPEED_FILES_MORE.split())
    return ([build / "lib" / "mbedtls" / "library" / (n + ".o") for n in sorted(names)]
            + [build / src.replace(".c", ".o") for src in P256M_FILES["NETSEC_MBEDTLS_BENCH_SRC"].split()])


def build(board, lines, make_vars):
    """Build the variant's image; its firmware.elf."""
    build_dir = OUT_DIR / "variants" / board
    build_dir.mkdir(parents=True, exist_ok=True)
    header = build_dir / "netsec_variant.h"
    text = "// bench/variants.py: this build's change to the profile\n%s\n" % lines
    if not header.is_file() or header.read_text() != text:
        header.write_text(text)  # rewritten only when it changes: make then rebuilds its users
    # make does not see command-line flags: those objects are rebuilt with every build.
    for obj in _flagged_objects(build_dir):
        obj.unlink(missing_ok=True)
    command = ["make", "-s", "qemu-image", "QEMU_BOARD=%s" % board, "QEMU_BUILD=%s" % build_dir,
               "CFLAGS_EXTRA=-DMBEDTLS_USER_CONFIG_FILE='\"%s\"'" % header]
    command += ["%s=%s" % item for item in sorted(make_vars.items())]
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    if result.returncode:
        raise SystemExit("bench: building variant failed:\n%s" % result.stdout[-3000:])
    return build_dir / "firmware.elf"


def measure(image):
    """One boot: the EC P-256 identity's handshake, bulk and heap figures."""
    ec = identities.ec_p256()
    per_tick = cortex_m.instructions_per_tick()
    with qemu.Guest(image, icount=True) as guest:
        cortex_m.write_files(guest, {
            "/bench/guest_tls.py": (ROOT / "bench" / "guest_tls.py").read_bytes(),
            "/netsec-credentials/SERVER_CERT.der": ec.cert_der,
            "/netsec-credentials/SERVER_KEY.der": ec.key_der, cortex_m.CA_FILE: ec.ca_der})
        (suite, _), runs = cortex_m._call(guest, "handshakes(%r)" % cortex_m.CA_FILE)
        bulk = {}
        for bulk_suite in cortex_m.BULK_SUITES:
            (_, _), write_ticks, read_ticks = cortex_m._call(guest, "throughput(%r, %d, 4096, %r)" % (
                cortex_m.CA_FILE, cortex_m.THROUGHPUT_BYTES, bulk_suite))
            bulk[bulk_suite] = [ticks * per_tick / cortex_m.THROUGHPUT_BYTES
                                for ticks in (write_ticks, read_ticks)]
        idle = cortex_m._call(guest, "idle_session(%r)" % cortex_m.CA_FILE)
        peak = cortex_m._call(guest, "handshake_heap_peak(%r)" % cortex_m.CA_FILE)
    served_peak = cortex_m.served_heap_peak(image, ec)
    server, client = runs[1]
    return {"suite": suite, "server": server * per_tick, "client": client * per_tick,
            "server_cold": runs[0][0] * per_tick, "client_cold": runs[0][1] * per_tick,
            "bulk_per_byte": bulk,
            "idle_session": idle, "handshake_peak_both_ends": peak,
            "handshake_peak_server": served_peak,
            "text": footprint.sections(image)["text"]}


def _bulk(r):
    """ "ChaCha20-Poly1305 e + d / AES-128-GCM e + d" (instructions per byte, TLS 1.3 records)."""
    return " / ".join("%.0f + %.0f" % tuple(r["bulk_per_byte"][suite])
                      for suite in cortex_m.BULK_SUITES)


def table(results):
    lines = ["| Variant | Server | Client | Bulk: ChaCha20-Poly1305 / AES-128-GCM (instr/byte) "
             "| Idle session | Handshake peak: server / both ends | Image text |",
             "|---|---|---|---|---|---|---|"]
    for name in sorted(results, key=lambda n: list(VARIANTS).index(n) if n in VARIANTS else 99):
        r = results[name]
        lines.append("| %s | %.1f M | %.1f M | %s | %.1f KB | %s%.1f KB | %.1f KB |" % (
            VARIANTS[name][0] if name in VARIANTS else name, r["server"] / 1e6, r["client"] / 1e6,
            _bulk(r), r["idle_session"] / 1024,
            "%.1f KB / " % (r["handshake_peak_server"] / 1024) if "handshake_peak_server" in r
            else "", r["handshake_peak_both_ends"] / 1024, r["text"] / 1024))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--board", default="MPS2_AN385", choices=("MPS2_AN385", "MPS2_AN386", "MPS2_AN385_ARMV6M"))
    parser.add_argument("names", nargs="*", help="variants (default: all): %s" % ", ".join(VARIANTS))
    args = parser.parse_args()
    for name in args.names:
        if name not in VARIANTS:
            parser.error("no variant %r: choose from %s" % (name, ", ".join(VARIANTS)))
    out = OUT_DIR / ("variants-%s.json" % args.board)
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name in args.names or list(VARIANTS):
        _, lines, make_vars = VARIANTS[name]
        print("bench: %s on %s: building ..." % (name, args.board), flush=True)
        image = build(args.board, lines, make_vars)
        print("bench: %s on %s: measuring ..." % (name, args.board), flush=True)
        results[name] = measure(image)
        out.write_text(json.dumps(results, indent=1) + "\n")
    print(table(results))


if __name__ == "__main__":
    sys.exit(main())
