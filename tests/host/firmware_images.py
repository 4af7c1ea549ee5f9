"""Firmware files made with the real formats' headers, for netsec flash's tests: UF2 blocks,
DfuSe files, ESP image headers, a Cortex-M vector table, and MicroPython's board banner."""
import struct

RP2040, RP2350, ABSOLUTE = 0xE48BFF56, 0xE48BFF59, 0xE48BFF57
PICO_W = b"; Raspberry Pi Pico W with RP2040\x00"
PICO2_W = b"; Raspberry Pi Pico 2 W with RP2350\x00"
NUCLEO_F429 = b"; NUCLEO-F429ZI with STM32F429\x00"


def code(banner, size=3000):
    """Firmware-like bytes: a vector table, filler, the MicroPython banner, more filler."""
    return struct.pack("<II", 0x20040000, 0x100001F7) + bytes(range(256)) * (size // 512) + \
        banner + b"\xa5" * (size // 2)


def uf2(payload, family, first_family=None, payload_size=256, drop=None):
    """UF2 blocks of payload (Microsoft's UF2 format) for family; first_family adds a leading block."""
    chunks = [payload[i:i + payload_size] for i in range(0, len(payload), payload_size)]
    blocks = [(0x10FFFF00, b"\xef" * payload_size, first_family)] if first_family else []
    blocks += [(0x10000000 + n * payload_size, chunk, family) for n, chunk in enumerate(chunks)]
    out = b""
    for number, (address, chunk, fam) in enumerate(blocks):
        if number == drop:
            continue
        count = len(blocks) if fam != ABSOLUTE else 1
        number_in = number if fam != ABSOLUTE else 0
        if first_family and fam != ABSOLUTE:
            number_in, count = number - 1, len(blocks) - 1
        head = struct.pack("<8I", 0x0A324655, 0x9E5D5157, 0x2000, address, len(chunk), number_in,
                           count, fam)
        out += head + chunk.ljust(476, b"\x00") + struct.pack("<I", 0x0AB16F30)
    return out


def dfuse(payload, address=0x08000000):
    """A DfuSe file (ST's UM0391): prefix, one target with one element, "UFD" suffix."""
    element = struct.pack("<II", address, len(payload)) + payload
    target = b"Target" + b"\x00" + struct.pack("<I", 1) + b"ST...".ljust(255, b"\x00") + \
        struct.pack("<II", len(element), 1) + element
    body = b"DfuSe\x01" + struct.pack("<I", 11 + len(target)) + b"\x01" + target
    return body + struct.pack("<HHHH", 0xFFFF, 0xDF11, 0x0483, 0x011A) + b"UFD" + bytes([16]) + \
        b"\x00" * 4


def esp(chip_id, banner):
    """An ESP image: header with magic 0xE9 and the chip ID at offset 12, then code."""
    header = bytes([0xE9, 3, 2, 0x20]) + struct.pack("<I", 0x40080000) + bytes(4) + \
        struct.pack("<H", chip_id) + bytes(10)
    return header + code(banner)
