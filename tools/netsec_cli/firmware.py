"""What a firmware image file says it is: its format, the chip it is for, the MicroPython board it
was built for, and whether it is the QEMU test-only image.

Formats (what MicroPython's ports write):
- UF2 (rp2): 512-byte blocks; each names its chip by a family ID (Microsoft's UF2 specification).
- ELF: e_machine says the architecture; OpenOCD and picotool take it.
- DfuSe .dfu (stm32): a "DfuSe" prefix, targets with address/size elements, a "UFD" suffix with
  the USB vendor/product (ST's UM0391).
- raw .bin for an STM32: a Cortex-M vector table at 0x08000000 (initial stack in SRAM, reset
  handler in flash, Thumb bit set).
- ESP .bin (esp32): an ESP image header (magic 0xE9) with the chip ID at offset 12 (Espressif's
  app image format).

MicroPython puts "; <MICROPY_HW_BOARD_NAME> with <MICROPY_HW_MCU_NAME>" into every image (the
REPL banner, py/mpconfig.h's MICROPY_BANNER_MACHINE); sys.implementation._machine on the running
board is the same text without "; ". That is how an image says which board it is for.
"""
import re
import struct
from dataclasses import dataclass, field

from .problems import CliError

# Printed by boards/QEMU_MPS2_AN385/test_only_insecure_entropy.c at every boot; no real board's
# image holds it.
TEST_ONLY_MARKER = b"TEST-ONLY INSECURE ENTROPY"

# UF2 family IDs (the UF2 specification's registry) of the chips netsec flashes.
UF2_FAMILIES = {
    0xE48BFF56: "rp2040",
    0xE48BFF59: "rp2350",      # RP2350, Arm Secure
    0xE48BFF5A: "rp2350-riscv",
    0xE48BFF5B: "rp2350-ns",   # RP2350, Arm Non-secure
    0x57755A57: "stm32f4",
    0x6DB66082: "stm32h7",
}
# pico-sdk puts one block of this family first in RP2350 UF2s (an erratum workaround); it says
# nothing about the chip.
UF2_FAMILY_ABSOLUTE = 0xE48BFF57
_UF2_MAGIC = (0x0A324655, 0x9E5D5157, 0x0AB16F30)
_UF2_NOT_MAIN_FLASH = 0x00000001
_UF2_FAMILY_PRESENT = 0x00002000

ELF_MACHINES = {40: "arm", 94: "xtensa", 243: "riscv"}

# esptool's chip IDs in the ESP image header.
ESP_CHIPS = {0: "esp32", 2: "esp32s2", 5: "esp32c3", 9: "esp32s3", 12: "esp32c2", 13: "esp32c6",
             16: "esp32h2"}

# Names of boards and MCUs use these characters; frozen text such as netsec's own warnings
# ("...this device; make your own with `netsec keygen` ...") does not pass for a banner.
_MACHINE = re.compile(rb"; ([A-Za-z0-9 ._+()/,-]{1,80}?) with ([A-Za-z0-9 ._+()/,-]{1,40}?)\x00")


@dataclass
class Image:
    """A firmware file as netsec flash sees it.

    format: "uf2" | "elf" | "dfu" | "stm32-bin" | "esp-bin"; chips: the chips it names (UF2
    families, ESP chip ID; empty where the format names none); machine: "<board> with <mcu>" from
    its banner, or None; test_only: it holds TEST_ONLY_MARKER; elf_machine: for ELF files.
    """
    path: str
    format: str
    chips: set = field(default_factory=set)
    machine: str = None
    test_only: bool = False
    elf_machine: str = None


def read(path):
    """Identify the image at path. Raises CliError for a file that is none of the formats."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CliError(path, "cannot read the image (%s)" % e.strerror,
                       "give the path of a built firmware file")
    if data[:4] == struct.pack("<I", _UF2_MAGIC[0]):
        image = Image(str(path), "uf2")
        content, image.chips = _uf2(path, data)
    elif data[:4] == b"\x7fELF":
        image = Image(str(path), "elf", elf_machine=_elf_machine(data))
        content = data
    elif data[:5] == b"DfuSe":
        image = Image(str(path), "dfu")
        content = _dfuse(path, data)
    elif data[:1] == b"\xe9" and len(data) >= 16:
        chip = struct.unpack_from("<H", data, 12)[0]
        if chip not in ESP_CHIPS:
            raise CliError(path, "an ESP image header with unknown chip ID %d" % chip,
                           "build the image for one of %s" % ", ".join(ESP_CHIPS.values()))
        image = Image(str(path), "esp-bin", chips={ESP_CHIPS[chip]})
        content = data
    elif _stm32_vectors(data):
        image = Image(str(path), "stm32-bin")
        content = data
    else:
        raise CliError(path, "not a firmware image netsec knows (UF2, ELF, DfuSe .dfu, STM32 .bin, "
                             "ESP .bin)",
                       "give the file the build wrote for the board: firmware.uf2 (RP2), "
                       "firmware.dfu, .bin or .elf (STM32), firmware.bin (ESP32)")
    image.test_only = TEST_ONLY_MARKER in content
    found = _MACHINE.search(content)
    if found:
        image.machine = "%s with %s" % (found.group(1).decode(), found.group(2).decode())
    return image


def _uf2(path, data):
    """(main-flash payload in address order, chip names) of a UF2 file; CliError if damaged."""
    if len(data) % 512:
        raise CliError(path, "UF2 file of %d bytes, not a whole number of 512-byte blocks"
                       % len(data), "build or download it again")
    blocks, families, expected = {}, set(), None
    for offset in range(0, len(data), 512):
        (start0, start1, flags, address, size, number, count, family) = struct.unpack_from(
            "<8I", data, offset)
        end = struct.unpack_from("<I", data, offset + 508)[0]
        if (start0, start1, end) != _UF2_MAGIC or size > 476:
            raise CliError(path, "UF2 block %d is damaged (bad magic or payload size)"
                           % (offset // 512), "build or download it again")
        if flags & _UF2_NOT_MAIN_FLASH:
            continue
        if flags & _UF2_FAMILY_PRESENT:
            if family == UF2_FAMILY_ABSOLUTE:
                continue
            if family not in UF2_FAMILIES:
                raise CliError(path, "UF2 family ID 0x%08x is not a chip netsec flashes" % family,
                               "build the image for one of %s" % ", ".join(
                                   sorted(set(UF2_FAMILIES.values()))))
            families.add(UF2_FAMILIES[family])
        if expected is None:
            expected = count
        blocks[(number, count)] = (address, data[offset + 32:offset + 32 + size])
    numbers = sorted(n for n, _ in blocks)
    if expected is None:
        raise CliError(path, "UF2 file without blocks for the main flash", "build it again")
    if numbers != list(range(expected)):
        raise CliError(path, "UF2 file is incomplete (%d of %s blocks)"
                       % (len(numbers), expected), "build or download it again")
    return b"".join(payload for _, payload in sorted(blocks.values())), families


def _elf_machine(data):
    machine = struct.unpack_from("<H", data, 18)[0] if len(data) > 20 else None
    return ELF_MACHINES.get(machine, "e_machine %s" % machine)


def _dfuse(path, data):
    """The payload of a DfuSe file's elements; CliError unless prefix and suffix are sound."""
    if len(data) < 11 + 16 or data[-8:-5] != b"UFD" or data[-5] != 16:
        raise CliError(path, "DfuSe file without its \"UFD\" suffix", "build it again")
    targets = data[10]
    offset, payload = 11, []
    for _ in range(targets):
        if data[offset:offset + 6] != b"Target":
            raise CliError(path, "DfuSe target %d is damaged" % len(payload), "build it again")
        elements = struct.unpack_from("<I", data, offset + 270)[0]
        offset += 274
        for _ in range(elements):
            size = struct.unpack_from("<I", data, offset + 4)[0]
            payload.append(data[offset + 8:offset + 8 + size])
            offset += 8 + size
    return b"".join(payload)


def _stm32_vectors(data):
    """True if data starts with a Cortex-M vector table for code in STM32 flash (0x08000000)."""
    if len(data) < 8:
        return False
    stack, reset = struct.unpack_from("<II", data)
    return 0x20000000 <= stack <= 0x40000000 and 0x08000000 <= reset < 0x09000000 and reset & 1
