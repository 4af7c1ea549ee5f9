"""Row 5: what netsec adds to the QEMU image. The frozen bytecode and tables of each module
(symbol sizes in the build's frozen_content.o), and the image's text size against the same
build without netsec and Net_Security (manifest_without_netsec.py), built in build/bench/."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST_WITHOUT_NETSEC = Path(__file__).resolve().parent / "manifest_without_netsec.py"


def build_without_netsec(build_dir, heap_kb):
    """The QEMU image with only asyncio frozen, built into build_dir; its firmware.elf."""
    command = [
        "make", "-s", "-j%d" % min(2, os.cpu_count() or 1),
        "-C", str(ROOT / "build" / "src" / "micropython" / "ports" / "qemu"),
        "BOARD=MPS2_AN385", "BOARD_DIR=%s" % (ROOT / "boards" / "QEMU_MPS2_AN385"),
        "BUILD=%s" % build_dir, "MICROPY_MPYCROSS=%s" % (ROOT / "build" / "mpy-cross" / "mpy-cross"),
        "HEAP_KB=%s" % heap_kb, "FROZEN_MANIFEST=%s" % MANIFEST_WITHOUT_NETSEC,
    ]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode:
        raise SystemExit("bench: building the QEMU image without netsec failed:\n%s"
                         % result.stdout[-3000:])
    return Path(build_dir) / "firmware.elf"


def sections(elf):
    """{'text': bytes, 'data': bytes, 'bss': bytes} of an ELF file (arm-none-eabi-size)."""
    out = subprocess.run(["arm-none-eabi-size", str(elf)], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    text, data, bss = out.splitlines()[1].split()[:3]
    return {"text": int(text), "data": int(data), "bss": int(bss)}


# A str/bytes constant of a frozen module: its object is a symbol, its characters are not.
_CONST_STR = re.compile(r"^static const mp_obj_str_t (const_obj_\w+) = \{\{&mp_type_\w+\}, \d+, (\d+),",
                        re.M)


def frozen_modules(source_c, obj):
    """{module: bytes} of frozen bytecode, constants (their characters included) and tables per
    frozen module, from a build's frozen_content.c and the symbol sizes in its object file obj,
    plus '(shared)' for what no one module owns (mostly the frozen qstr pool: names and strings
    that every module shares)."""
    source = Path(source_c).read_text()
    modules = [line.split()[-1] for line in source.splitlines()
               if line.startswith("// frozen module ")]
    # Longest first, so that a module whose name starts with another's is not miscounted.
    modules.sort(key=len, reverse=True)
    sizes = {module: 0 for module in modules}
    attributed = 0

    def attribute(symbol, size):
        nonlocal attributed
        for module in modules:
            if "_" + module + "_" in "_" + symbol + "_":
                sizes[module] += size
                attributed += size
                return

    out = subprocess.run(["arm-none-eabi-nm", "-S", str(obj)], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            attribute(fields[3], int(fields[1], 16))
    for symbol, length in _CONST_STR.findall(source):
        attribute(symbol, int(length) + 1)  # the characters and their terminating NUL
    sizes["(shared)"] = sections(obj)["text"] - attributed
    return sizes


def measure(image, heap_kb):
    build_dir = Path(image).parent
    without = build_without_netsec(ROOT / "build" / "bench" / "qemu-without-netsec", heap_kb)
    modules = frozen_modules(build_dir / "frozen_content.c", build_dir / "frozen_content.o")
    netsec = {m: n for m, n in modules.items() if m.startswith("netsec_")}
    return {
        "frozen_netsec_bytes": sum(netsec.values()),
        "frozen_net_security_bytes": modules.get("Net_Security", 0),
        "frozen_modules": modules,
        "image": sections(image),
        "image_without_netsec": sections(without),
    }
