"""Row 6: flash and RAM of each real-board image that is built (build/boards/<BOARD>, made by
`make boards`). Flash is the image written to the board (firmware.bin). RAM, from the rp2
linker script's symbols: the MicroPython heap (__GcHeapStart..__GcHeapEnd) and everything else
from the start of SRAM to the top of the stacks (__StackTop): .data, .bss, vector table, stacks."""
import subprocess
from pathlib import Path

import footprint

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "build" / "boards"
RAM_START = 0x20000000


def _symbols(elf):
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], stdout=subprocess.PIPE, text=True, check=True).stdout
    return {f[2]: int(f[0], 16) for f in (line.split() for line in out.splitlines()) if len(f) == 3}


def measure_rp2(build_dir):
    elf = build_dir / "firmware.elf"
    symbols = _symbols(elf)
    modules = footprint.frozen_modules(build_dir / "frozen_content.c",
                                       build_dir / "CMakeFiles" / "firmware.dir" / "frozen_content.c.o")
    return {
        "flash_image_bytes": (build_dir / "firmware.bin").stat().st_size,
        "frozen_netsec_bytes": sum(n for m, n in modules.items() if m.startswith("netsec_")),
        "frozen_net_security_bytes": modules.get("Net_Security", 0),
        "ram_bytes": symbols["__StackTop"] - RAM_START,
        "micropython_heap_bytes": symbols["__GcHeapEnd"] - symbols["__GcHeapStart"],
    }


def measure():
    """{board: figures} for every rp2 board image built (the rp2 ones are those with a UF2)."""
    return {d.name: measure_rp2(d) for d in sorted(BOARDS.glob("*")) if (d / "firmware.uf2").is_file()}
