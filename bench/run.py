"""make bench: every benchmark, one table (Markdown, for the README), build/bench/results.json.

Rows 1-3 count guest instructions in the QEMU Cortex-M3 and Cortex-M4 images (repeatable to
the instruction; measured on two boots to show it), row 4 times the unix image's HTTPS servers
against each other on loopback (ratios from one run, servers taking turns), rows 5 and 6 are
sizes from the builds (row 6: the real boards `make boards` built), row 7 counts handshake
instructions again in the same image compiled for Armv6-M (the RP2040's instruction set) on
the same machine, row 8 counts what the demo server in the networked M3 and M4 images runs per
request from the host (bench/cortex_m_https.py; `bench/run.py network` measures only that row).
"""
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

import boards
import cortex_m
import cortex_m_https
import footprint
import https

ROOT = Path(__file__).resolve().parents[1]
# Rows 1-3 per core: {core: its QEMU image}.
QEMU_IMAGES = {core: ROOT / "build" / "qemu" / board / "firmware.elf"
               for core, board in (("M3", "MPS2_AN385"), ("M4", "MPS2_AN386"))}
QEMU_IMAGE = QEMU_IMAGES["M3"]
# Row 8: the networked images, Cortex-M3 and Cortex-M4.
NETWORK_IMAGES = (("QEMU M3", QEMU_IMAGE), ("QEMU M4", QEMU_IMAGES["M4"]))
# The same image compiled for Armv6-M (the RP2040's Cortex-M0+), run on the same M3 machine.
ARMV6M_IMAGE = ROOT / "build" / "qemu" / "MPS2_AN385_ARMV6M" / "firmware.elf"
UNIX_IMAGE = ROOT / "build" / "unix" / "micropython"
OUT_DIR = ROOT / "build" / "bench"
CLOCKS_MHZ = ((133, "RP2040"), (216, "STM32F7"))
ASSUMPTION = ("seconds assume one instruction per clock cycle at %s: optimistic (loads, branches "
              "and multiplies take more cycles; flash wait states; the RP2040's Cortex-M0+ "
              "has no 32x32->64 multiply, which bignum arithmetic leans on), so read them as "
              "lower bounds" % " and ".join("%d MHz (%s)" % c for c in CLOCKS_MHZ))


def _machine():
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "load_at_start": os.getloadavg()[0],
            "python": platform.python_version()}


# --- formatting ------------------------------------------------------------------------------

def _minstr(n):
    return "%.1f M instr" % (n / 1e6)


def _seconds(n):
    return ", ".join("%.2f s @ %d MHz" % (n / (mhz * 1e6), mhz) for mhz, _ in CLOCKS_MHZ)


def _kb(n):
    return "%.1f KB" % (n / 1024)


def _both(r, value):
    """'EC figure / RSA figure' for the two server identities."""
    return " / ".join(value(r[name]) for name in ("EC P-256", "RSA-2048"))


def _rows_cortex_m(r, core):
    image = "QEMU " + core
    rows = []
    for name in ("EC P-256", "RSA-2048"):
        h = r[name]["handshake_instructions"]
        for side in ("server", "client"):
            rows.append(("1", "Full TLS handshake, %s server identity (%s): %s side"
                         % (name, r[name]["suite"], side), image,
                         "%s (%s)" % (_minstr(h[side]), _seconds(h[side])),
                         "a new context's first handshake: %s"
                         % _minstr(h[side + "_cold"]), ""))
    heap_kb = r["build"]["HEAP_KB"]
    rows += [
        ("2", "Heap peak during a handshake, server and client in one heap (EC / RSA)",
         image, _both(r, lambda x: _kb(x["heap"]["handshake_peak_both_ends"])), "", ""),
        ("2", "Heap peak of the server side of a handshake, the client on the host (EC / RSA)",
         image, _both(r, lambda x: _kb(x["heap"]["handshake_peak_server"])), "", ""),
        ("2", "Heap held by one idle established server session (EC / RSA)", image,
         _both(r, lambda x: _kb(x["heap"]["idle_server_session"])), "", ""),
        ("2", "Idle server sessions that fit in the %s KB heap (EC / RSA)" % heap_kb, image,
         _both(r, lambda x: str(x["heap"]["sessions_held"])),
         "then %s, with %s free" % (_both(r, lambda x: x["heap"]["next_session_failed_with"]),
                                    _both(r, lambda x: _kb(x["heap"]["free_after_sessions"]))),
         ""),
    ]
    bulk = max(r["throughput"], key=lambda t: t["write_size"])
    others = "; ".join("%d-byte writes: %.0f + %.0f" % (t["write_size"], t["encrypt_per_byte"],
                                                       t["decrypt_per_byte"])
                       for t in r["throughput"] if t is not bulk)
    rows.append(("3", "Bulk data through an established session (%s), %d-byte writes: "
                 "instructions per byte" % (bulk["suite"], bulk["write_size"]), image,
                 "encrypt %.0f + decrypt %.0f" % (bulk["encrypt_per_byte"],
                                                  bulk["decrypt_per_byte"]),
                 "%s; sending %.2f MB/s at %d MHz" % (others, CLOCKS_MHZ[0][0] / bulk["encrypt_per_byte"],
                                                     CLOCKS_MHZ[0][0]), ""))
    rows += _rows_kinds(r["kinds"], image)
    rows.append(("1-3", "Rows 1-3 measured again on a second boot", image,
                 "identical" if r["repeatable"] else "DIFFERENT (see results.json)", "", ""))
    return rows


_KINDS = (("tls13_full", "Full TLS 1.3 handshake, EC P-256 identity, P-256 ECDHE"),
          ("tls13_full_x25519", "Full TLS 1.3 handshake, EC P-256 identity, X25519"),
          ("tls12_full", "Full TLS 1.2 handshake, EC P-256 identity, P-256 ECDHE"),
          ("tls13_resumed", "Resumed TLS 1.3 handshake (ticket, psk_dhe_ke)"),
          ("tls12_resumed_ticket", "Resumed TLS 1.2 handshake (RFC 5077 ticket)"),
          ("tls13_psk", "External-PSK TLS 1.3 handshake (psk_dhe_ke, P-256)"),
          ("tls12_psk", "External-PSK TLS 1.2 handshake"))


def _rows_kinds(k, image):
    """Row 1b: handshakes by kind, and the bulk ciphers side by side."""
    rows = [("1b", "%s (%s): server side" % (title, k[name]["suite"][0]), image,
             "%s (%s)" % (_minstr(k[name]["server"]), _seconds(k[name]["server"])),
             "client side %s" % _minstr(k[name]["client"]), "")
            for name, title in _KINDS]
    full13, full12 = k["tls13_full"]["server"], k["tls12_full"]["server"]
    rows.append(("1b", "TLS 1.3 / TLS 1.2 full handshake, server side (goal <= 1.1)", image,
                 "%.2f" % (full13 / full12), "client side %.2f"
                 % (k["tls13_full"]["client"] / k["tls12_full"]["client"]), ""))
    rows += [("3b", "Bulk %s, 4096-byte writes: instructions per byte" % name[5:], image,
              "encrypt %.0f + decrypt %.0f" % (v["encrypt_per_byte"], v["decrypt_per_byte"]),
              "", "") for name, v in sorted(k.items()) if name.startswith("bulk ")]
    return rows


_PEERS = (("microdot", "microdot"), ("microdot-nodelay", "microdot, Nagle off"),
          ("floor", "floor"))


def _rows_https(r):
    def figure(s):
        if "unavailable" in s:
            return "n/a"
        return "%.0f req/s (%d handshakes)" % (s["requests_per_s"], s["handshakes_per_round"])

    rows = []
    for scenario in r["scenarios"].values():
        servers = scenario["servers"]
        netsec = servers["netsec"]
        ratios = []
        for peer, _ in _PEERS:
            if "unavailable" in netsec or "unavailable" in servers[peer]:
                ratios.append("n/a")
            else:
                ratios.append("%.2fx" % (netsec["requests_per_s"] / servers[peer]["requests_per_s"]))
        rows.append(("4", "HTTPS, %s: %d requests per round" % (scenario["description"],
                                                     _requests(servers)),
                     "unix", figure(netsec),
                     "; ".join("%s %s" % (label, figure(servers[peer])) for peer, label in _PEERS),
                     " / ".join(ratios)))
    notes = sorted({s["unavailable"] for sc in r["scenarios"].values()
                    for s in sc["servers"].values() if "unavailable" in s})
    return rows, notes


def _requests(servers):
    return max(s.get("requests_per_round", 0) for s in servers.values())


def _rows_footprint(r):
    text, without = r["image"]["text"], r["image_without_netsec"]["text"]
    return [
        ("5", "Frozen netsec package: bytecode, constants, tables", "QEMU M3",
         _kb(r["frozen_netsec_bytes"]),
         "Net_Security (default credentials) %s" % _kb(r["frozen_net_security_bytes"]), ""),
        ("5", "Image text, with netsec vs the same build without netsec and Net_Security",
         "QEMU M3", _kb(text), _kb(without), "+%s" % _kb(text - without)),
    ]


def _rows_armv6m(r, m3):
    rows = []
    for name in ("EC P-256", "RSA-2048"):
        v6, v7 = r[name]["handshake_instructions"], m3[name]["handshake_instructions"]
        rows.append(("7", "Full TLS handshake, %s server identity: server side, code compiled for "
                     "Armv6-M (%s only, as the RP2040's Cortex-M0+) vs for the Cortex-M3" % (name, r["thumb_isa"]),
                     "QEMU Armv6-M", _minstr(v6["server"]),
                     "M3 code %s; client side %s vs %s" % (_minstr(v7["server"]), _minstr(v6["client"]),
                                                          _minstr(v7["client"])),
                     "%.2fx / %.2fx" % (v6["server"] / v7["server"], v6["client"] / v7["client"])))
    return rows


def _rows_boards(r):
    return [("6", "Real board image: flash / RAM (MicroPython heap of it)", board,
             "%s / %s (%s)" % (_kb(b["flash_image_bytes"]), _kb(b["ram_bytes"]), _kb(b["micropython_heap_bytes"])),
             "frozen netsec %s, Net_Security %s" % (_kb(b["frozen_netsec_bytes"]), _kb(b["frozen_net_security_bytes"])),
             "") for board, b in r.items()]


def _rows_network(results):
    def minstr(figures):
        return " / ".join("%.2f M instr" % (n / 1e6) for n in figures)

    def boots(r, *names):
        return ("two boots; samples differ by at most %d instr"
                % max(r[name + "_boots_differ_by"] for name in names))

    rows = []
    for name, r in results.items():
        rows += [
            ("8", "Demo over lwIP: first HTTPS request, TCP SYN to the last byte of the page, "
             "full TLS 1.3 handshake (host: tlslite-ng, fixed seed)", name,
             minstr(r["first_request"]),
             "each new connection after it %s; %s" % (minstr(r["new_connection_request"]),
                                                       boots(r, "first_request",
                                                             "new_connection_request")), ""),
            ("8", "Demo over lwIP: one keep-alive GET of the page (host: CPython ssl)",
             name, minstr(r["keep_alive_get"]), boots(r, "keep_alive_get"), ""),
            ("8", "Demo over lwIP: a 256 KB static file on a keep-alive session, instructions "
             "per byte (host: CPython ssl)", name,
             " / ".join("%.1f" % n for n in r["static_per_byte"]), boots(r, "static_256k"), ""),
            ("8", "Demo over lwIP: keep-alive TLS sessions served at once before one fails",
             name, " / ".join(str(n) for n in r["sessions_that_fit"]),
             "two boots; then: %s" % " / ".join(r["next_session_failed_with"]), ""),
        ]
    return rows


def _measure_network():
    return {name: cortex_m_https.measure(image) for name, image in NETWORK_IMAGES}


def table(rows):
    header = ("#", "Measurement", "Image", "Figure", "Peer / detail", "Ratio")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- running ---------------------------------------------------------------------------------

def main_network():
    """`bench/run.py network`: only row 8, its figures put into an existing results.json."""
    for _, image in NETWORK_IMAGES:
        if not image.is_file():
            raise SystemExit("bench: %s not found: build the images with `make images`" % image)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    print("bench: row 8, the demo over lwIP in the M3 and M4 images, two boots each ...", flush=True)
    results["network"] = _measure_network()
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(table(_rows_network(results["network"])))
    print("Row 8: %s; only the guest's instructions run in answer to the host count (not its "
          "time asleep, not lwIP's timers), less two empty marks; figures of two boots."
          % next(iter(results["network"].values()))["qemu"])


def main():
    for image in list(QEMU_IMAGES.values()) + [ARMV6M_IMAGE, UNIX_IMAGE]:
        if not image.is_file():
            raise SystemExit("bench: %s not found: build the images with `make bench`" % image)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": _machine(), "assumption": ASSUMPTION}
    for core, image in QEMU_IMAGES.items():
        print("bench: rows 1-3, QEMU Cortex-%s image, two boots ..." % core, flush=True)
        results["cortex_" + core.lower()] = cortex_m.measure(image)
    print("bench: row 5, building the QEMU image without netsec ...", flush=True)
    results["footprint"] = footprint.measure(QEMU_IMAGE, results["cortex_m3"]["build"]["HEAP_KB"])
    print("bench: row 4, HTTPS servers on the unix image ...", flush=True)
    results["https"] = https.measure(UNIX_IMAGE, OUT_DIR)
    print("bench: row 7, the Armv6-M image's handshakes ...", flush=True)
    results["armv6m"] = cortex_m.measure_handshakes(ARMV6M_IMAGE)
    print("bench: row 8, the demo over lwIP in the M3 and M4 images ...", flush=True)
    results["network"] = _measure_network()
    results["boards"] = boards.measure()
    results["seconds"] = round(time.monotonic() - started)

    https_rows, https_notes = _rows_https(results["https"])
    rows = (_rows_cortex_m(results["cortex_m3"], "M3") + _rows_cortex_m(results["cortex_m4"], "M4")
            + https_rows + _rows_footprint(results["footprint"]))
    rows += _rows_boards(results["boards"]) + _rows_armv6m(results["armv6m"], results["cortex_m3"])
    rows += _rows_network(results["network"])
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    build = results["cortex_m3"]["build"]
    print()
    print(table(rows))
    print()
    print("QEMU: %s (HEAP_KB=%s, ENTROPY_SEED=%s); 1 instruction = 1 ns of virtual time."
          % (results["cortex_m3"]["qemu"], build["HEAP_KB"], build["ENTROPY_SEED"]))
    print("Note: " + ASSUMPTION + ".")
    print("Row 4: %s, %d cores, load %.1f at start; microdot %s; medians of %d alternating "
          "rounds: compare ratios, not absolute numbers."
          % (results["machine"]["cpu"], results["machine"]["cores"],
             results["machine"]["load_at_start"], results["https"]["microdot_version"],
             results["https"]["rounds"]))
    for note in https_notes:
        print("n/a: " + note)
    print("Results: %s (%d s)" % (OUT_DIR / "results.json", results["seconds"]))
    if not all(results[k]["repeatable"] for k in ("cortex_m3", "cortex_m4")):
        print("bench: WARNING: rows 1-3 differed between two boots (second_boot in "
              "results.json). Exact repeats need QEMU's -icount shift=0,sleep=off: with "
              "sleep=on a wake-up from WFI lands at a host-dependent virtual time.",
              file=sys.stderr)


if __name__ == "__main__":
    main_network() if sys.argv[1:] == ["network"] else main()
