"""netsec flash's decisions without hardware: which tool with which arguments, and which images
are refused. Images are synthesized with the real formats' headers (UF2 blocks, DfuSe, ESP image
header, Cortex-M vector table); the BOOTSEL drive is a directory holding INFO_UF2.TXT."""
import re
import struct
import subprocess

import pytest
from certfactory import run_netsec
from firmware_images import (ABSOLUTE, NUCLEO_F429, PICO2_W, PICO_W, RP2040, RP2350, code, dfuse,
                             esp, uf2)
from harness import ROOT, make

from netsec_cli import firmware, flash
from netsec_cli.problems import CliError

pytestmark = pytest.mark.host

def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def bootsel_drive(tmp_path, board_id, name="RPI-RP2"):
    """A mounted BOOTSEL drive as the boot ROM shows it: INFO_UF2.TXT names the chip."""
    drive = tmp_path / "media" / name
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\n"
                                        "Board-ID: %s\r\n" % board_id)
    (drive / "INDEX.HTM").write_text("<html></html>")
    return str(drive)


def refusal(**kwargs):
    with pytest.raises(CliError) as caught:
        flash.make_plan(**kwargs)
    return str(caught.value)


def test_pico_w_uf2_is_copied_to_the_rp2040_drive(tmp_path, capsys):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    drive = bootsel_drive(tmp_path, "RPI-RP2")
    plan = flash.make_plan(image, mounts=["/", str(tmp_path), drive])
    assert (plan.board, plan.tool, plan.drive, plan.argv) == ("RPI_PICO_W", "drive", drive, None)

    status, out, err = run_netsec(capsys, "flash", image, "--device", drive)

    assert (status, err) == (0, "")
    assert out == "netsec flash: %s -> %s; the board writes it to flash and restarts\n" % (image, drive)
    assert (tmp_path / "media/RPI-RP2/firmware.uf2").read_bytes() == \
        (tmp_path / "firmware.uf2").read_bytes()


def test_rp2350_uf2_with_its_absolute_block_goes_to_the_rp2350_drive(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO2_W), RP2350, first_family=ABSOLUTE))
    assert firmware.read(image).chips == {"rp2350"}
    rp2040 = bootsel_drive(tmp_path, "RPI-RP2")
    rp2350 = bootsel_drive(tmp_path, "RP2350", name="RP2350")
    plan = flash.make_plan(image, board_name="RPI_PICO2_W", mounts=[rp2040, rp2350])
    assert plan.drive == rp2350


def test_uf2_for_another_chip_than_the_drive_is_refused(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO2_W), RP2350, first_family=ABSOLUTE))
    drive = bootsel_drive(tmp_path, "RPI-RP2")
    assert refusal(path=image, mounts=[drive]) == (
        "%s: this BOOTSEL drive is an rp2040, the image is for RPI_PICO2_W (rp2350) — connect the "
        "board the image is for, or flash the image built for this one" % drive)
    assert "is an rp2040" in refusal(path=image, device=drive)


def test_image_for_another_board_than_named_is_refused(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    assert refusal(path=image, board_name="RPI_PICO", mounts=[]) == (
        "%s: the image is for 'Raspberry Pi Pico W with RP2040', not RPI_PICO ('Raspberry Pi Pico "
        "with RP2040') — flash the image built for RPI_PICO, or give the right --board" % image)
    assert "the image is for rp2040, not RPI_PICO2's rp2350" in refusal(
        path=write(tmp_path, "nameless.uf2", uf2(code(b""), RP2040)), board_name="RPI_PICO2")


def test_frozen_text_before_the_banner_is_not_taken_for_it(tmp_path):
    # An STM32 image keeps frozen strings before the banner, netsec's own warning among them.
    frozen = b"anyone can impersonate this device; make your own with `netsec keygen` and `netsec convert`\x00"
    image = write(tmp_path, "firmware.dfu", dfuse(code(frozen + NUCLEO_F429)))
    assert firmware.read(image).machine == "NUCLEO-F429ZI with STM32F429"


def test_uf2_family_contradicting_its_banner_is_refused(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO2_W), RP2040))
    assert "the image names 'Raspberry Pi Pico 2 W with RP2350' but is for rp2040" in refusal(
        path=image, mounts=[])


def test_test_only_marker_split_across_uf2_blocks_is_found(tmp_path):
    payload = code(PICO_W, size=1000)
    payload = payload[:256 - 10] + firmware.TEST_ONLY_MARKER + payload[256 - 10:]
    image = write(tmp_path, "firmware.uf2", uf2(payload, RP2040))
    assert firmware.TEST_ONLY_MARKER not in open(image, "rb").read(), "the marker straddles blocks"
    assert "this is the QEMU test-only image" in refusal(path=image, mounts=[])


def test_damaged_uf2_files_are_refused(tmp_path):
    whole = uf2(code(PICO_W), RP2040)
    assert "not a whole number of 512-byte blocks" in refusal(
        path=write(tmp_path, "short.uf2", whole[:-100]))
    assert "UF2 file is incomplete (11 of 12 blocks)" in refusal(
        path=write(tmp_path, "gap.uf2", uf2(code(PICO_W), RP2040, drop=3)))
    broken = bytearray(whole)
    broken[512 * 2 + 508] ^= 1
    assert "UF2 block 2 is damaged" in refusal(path=write(tmp_path, "bad.uf2", bytes(broken)))
    assert "UF2 family ID 0x12345678 is not a chip netsec flashes" in refusal(
        path=write(tmp_path, "odd.uf2", uf2(code(PICO_W), 0x12345678)))


def test_no_drive_and_no_picotool_says_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no picotool
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    message = refusal(path=image, mounts=["/", str(tmp_path)])
    assert message.startswith("no BOOTSEL drive found: no INFO_UF2.TXT on any of the 2 mounted "
                              "filesystems")
    assert "picotool is not installed — hold BOOTSEL while plugging the board in" in message


def test_a_directory_without_info_uf2_is_not_a_drive(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    assert "no INFO_UF2.TXT here: not a BOOTSEL drive" in refusal(path=image, device=str(tmp_path))


def test_two_drives_for_the_chip_need_device(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    drives = [bootsel_drive(tmp_path, "RPI-RP2", name=n) for n in ("A", "B")]
    assert "2 BOOTSEL drives for rp2040" in refusal(path=image, mounts=drives)
    assert flash.make_plan(image, device=drives[1], mounts=drives).drive == drives[1]


def test_picotool_argv(tmp_path):
    image = write(tmp_path, "firmware.uf2", uf2(code(PICO_W), RP2040))
    plan = flash.make_plan(image, tool="picotool", mounts=[])
    assert plan.argv == ["picotool", "load", "--verify", "--execute", image]


def test_stm32_tools_and_their_arguments(tmp_path):
    dfu = write(tmp_path, "firmware.dfu", dfuse(code(NUCLEO_F429)))
    assert flash.make_plan(dfu).argv == [
        "dfu-util", "--alt", "0", "--device", "0483:df11", "--dfuse-address", ":leave",
        "--download", dfu]
    binary = write(tmp_path, "firmware.bin", struct.pack("<II", 0x20030000, 0x08000F01) + code(NUCLEO_F429))
    assert flash.make_plan(binary).argv == ["st-flash", "--reset", "write", binary, "0x08000000"]
    assert flash.make_plan(binary, tool="dfu-util").argv[-3:] == ["0x08000000:leave",
                                                                  "--download", binary]
    elf = write(tmp_path, "firmware.elf", b"\x7fELF\x01\x01\x01" + bytes(11) + b"\x28\x00" +
                code(b"; NUCLEO_H743ZI with STM32H743\x00"))
    assert flash.make_plan(elf).argv == [
        "openocd", "-f", "interface/stlink.cfg", "-f", "target/stm32h7x.cfg",
        "-c", "program {%s} verify reset exit" % elf]
    assert "--tool openocd does not take a dfu image for NUCLEO_F429ZI — use dfu-util" in refusal(
        path=dfu, tool="openocd")


def test_esp32_offsets_follow_the_chip(tmp_path):
    esp32 = write(tmp_path, "esp32.bin", esp(0, b"; Generic ESP32 module with ESP32\x00"))
    s3 = write(tmp_path, "s3.bin", esp(9, b"; Generic ESP32S3 module with ESP32S3\x00"))
    assert flash.make_plan(esp32, device="/dev/ttyUSB0").argv == [
        "esptool", "--chip", "esp32", "--port", "/dev/ttyUSB0", "write-flash", "0x1000", esp32]
    assert flash.make_plan(s3).argv == ["esptool", "--chip", "esp32s3", "write-flash", "0x0", s3]
    assert "the image is for esp32s3, not ESP32_GENERIC's esp32" in refusal(
        path=write(tmp_path, "s3-nameless.bin", esp(9, b"")), board_name="ESP32_GENERIC")


def test_formats_a_board_cannot_take_are_refused(tmp_path):
    nucleo_uf2 = write(tmp_path, "nucleo.uf2", uf2(code(NUCLEO_F429), 0x57755A57))
    assert "a uf2 image cannot be flashed to NUCLEO_F429ZI — flash the board's dfu or elf or " \
           "stm32-bin file" in refusal(path=nucleo_uf2)
    assert "not a firmware image netsec knows" in refusal(
        path=write(tmp_path, "notes.txt", b"hello"))
    assert "a board netsec flash does not know" in refusal(path=write(
        tmp_path, "other.uf2", uf2(code(b"; Some Board with RP2040\x00"), RP2040)))


def test_dry_run_says_what_it_would_do(tmp_path, capsys):
    image = write(tmp_path, "firmware.dfu", dfuse(code(NUCLEO_F429)))
    status, out, err = run_netsec(capsys, "flash", image, "--dry-run")
    assert (status, err) == (0, "")
    assert out == ("netsec flash: %s is for NUCLEO_F429ZI; would dfu-util --alt 0 --device "
                   "0483:df11 --dfuse-address :leave --download %s\n" % (image, image))


def test_the_board_table_matches_micropython_sources():
    make("sources")
    ports = ROOT / "build" / "src" / "micropython" / "ports"
    for name, board in flash.BOARDS.items():
        port = {"rp2": "rp2", "stm32": "stm32", "esp32": "esp32"}[flash._kind(board.chip)]
        header = (ports / port / "boards" / name / "mpconfigboard.h").read_text()
        board_name = re.search(r'#define MICROPY_HW_BOARD_NAME\s+"([^"]+)"', header).group(1)
        mcu = re.search(r'#define MICROPY_HW_MCU_NAME\s+"([^"]+)"', header)
        mcu = mcu.group(1) if mcu else board.chip.upper()  # rp2: mpconfigport.h, by chip
        assert board.machine == "%s with %s" % (board_name, mcu), name


def test_qemu_entropy_source_prints_the_marker():
    source = (ROOT / "boards/QEMU_MPS2_AN385/test_only_insecure_entropy.c").read_text()
    assert firmware.TEST_ONLY_MARKER.decode() in source


@pytest.mark.parametrize("tool, make_image, no_device", [
    ("dfu-util", lambda d: write(d, "f.dfu", dfuse(code(NUCLEO_F429))),
     "No DFU capable USB device available"),
    ("dfu-util", lambda d: write(d, "f.bin", struct.pack("<II", 0x20030000, 0x08000F01) + code(NUCLEO_F429)),
     "No DFU capable USB device available"),
    ("st-flash", lambda d: write(d, "f.bin", struct.pack("<II", 0x20030000, 0x08000F01) + code(NUCLEO_F429)),
     "Couldn't find any ST-Link devices"),
    ("openocd", lambda d: write(d, "f.elf", b"\x7fELF\x01\x01\x01" + bytes(11) + b"\x28\x00" +
                                code(b"; NUCLEO_H743ZI with STM32H743\x00")), "open failed"),
    ("esptool", lambda d: write(d, "f.bin", esp(9, b"; Generic ESP32S3 module with ESP32S3\x00")),
     "Could not open %(port)s"),
])
def test_the_real_tools_accept_the_arguments(tmp_path, tool, make_image, no_device):
    """Each tool, given the planned argv and no board, gets as far as looking for the board."""
    port = str(tmp_path / "ttyUSB9")  # no such port
    plan = flash.make_plan(make_image(tmp_path), tool=tool, device=port if tool == "esptool" else None)
    executable = flash.find_tool(tool)
    assert executable, "%s is not installed: run `make deps`" % tool
    result = subprocess.run([executable] + plan.argv[1:], capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and no_device % {"port": port} in output, output
