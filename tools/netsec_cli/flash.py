"""netsec flash: put a built firmware image on a board, refusing images meant for another."""
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from . import firmware, problems
from .device import Device, DeviceError, RemoteError
from .problems import CliError

HELP = "put a built firmware image on a board (UF2 drive, picotool, dfu-util, st-flash, openocd, esptool)"
DESCRIPTION = """\
Write a firmware image to a board, after checking that the image is for it.

RP2040/RP2350 (Pico, Pico W, Pico 2, Pico 2 W): the UF2 is copied to the board's
BOOTSEL drive (the mounted RPI-RP2 or RP2350 drive, found by its INFO_UF2.TXT),
or loaded with picotool when no drive is mounted. STM32: a .dfu goes through
dfu-util (USB DFU), a .bin through st-flash (ST-LINK), an .elf through
OpenOCD (ST-LINK). ESP32 family: esptool writes the .bin.

--device is the board's serial port while MicroPython runs on it: the board
must say (sys.implementation._machine) that it is the board the image is for,
and is then put into its bootloader (RP2, STM32 DFU). For RP2 it may instead be the
BOOTSEL drive's mount point.

Refused, before anything is written: the QEMU test-only image (its entropy is
predictable), an image whose banner names another board than --board or the
connected one, a UF2 for another chip than the drive's, an image in a format
the chosen tool does not take."""
EPILOG = """\
examples:
  netsec flash build/boards/RPI_PICO_W/firmware.uf2
  netsec flash build/boards/RPI_PICO_W/firmware.uf2 --device /dev/ttyACM0
  netsec flash firmware.dfu --board NUCLEO_F429ZI
  netsec flash firmware.bin --board ESP32_GENERIC --device /dev/ttyUSB0
  netsec flash build/boards/RPI_PICO2/firmware.uf2 --dry-run"""


@dataclass(frozen=True)
class Board:
    """chip: as firmware.Image.chips names it; machine: sys.implementation._machine of its MicroPython."""
    chip: str
    machine: str


# MicroPython 1.25's names for these boards (mpconfigboard.h's MICROPY_HW_BOARD_NAME with
# MICROPY_HW_MCU_NAME): tests/host/test_flash.py checks them against the pinned source.
BOARDS = {
    "RPI_PICO": Board("rp2040", "Raspberry Pi Pico with RP2040"),
    "RPI_PICO_W": Board("rp2040", "Raspberry Pi Pico W with RP2040"),
    "RPI_PICO2": Board("rp2350", "Raspberry Pi Pico2 with RP2350"),
    "RPI_PICO2_W": Board("rp2350", "Raspberry Pi Pico 2 W with RP2350"),
    "NUCLEO_F429ZI": Board("stm32f4", "NUCLEO-F429ZI with STM32F429"),
    "NUCLEO_H743ZI": Board("stm32h7", "NUCLEO_H743ZI with STM32H743"),
    "ESP32_GENERIC": Board("esp32", "Generic ESP32 module with ESP32"),
    "ESP32_GENERIC_S3": Board("esp32s3", "Generic ESP32S3 module with ESP32S3"),
    "ESP32_GENERIC_C3": Board("esp32c3", "ESP32C3 module with ESP32C3"),
}
# Which tools take which image format, per chip kind; the first is the default.
TOOLS = {
    "rp2": {"uf2": ("drive", "picotool"), "elf": ("picotool",)},
    "stm32": {"dfu": ("dfu-util",), "stm32-bin": ("st-flash", "dfu-util"), "elf": ("openocd",)},
    "esp32": {"esp-bin": ("esptool",)},
}
TOOL_NAMES = ("drive", "picotool", "dfu-util", "st-flash", "openocd", "esptool")
# Board-ID line of INFO_UF2.TXT on the BOOTSEL drive, per chip (the boot ROMs' own text).
DRIVE_BOARD_IDS = {"RPI-RP2": "rp2040", "RP2350": "rp2350"}
OPENOCD_TARGETS = {"stm32f4": "target/stm32f4x.cfg", "stm32h7": "target/stm32h7x.cfg"}
ESP_OFFSETS = {"esp32": "0x1000", "esp32s2": "0x1000"}  # the others boot from 0x0
STM32_DFU_ID = "0483:df11"  # the STM32 system bootloader's USB vendor:product
STM32_FLASH = "0x08000000"
LABELS = "/dev/disk/by-label"  # udev's links; the BOOTSEL drives are labelled like their Board-ID
BOOTLOADER_SETTLE = 3  # seconds for a board's bootloader to appear on USB after machine.bootloader()
DRIVE_WAIT = 20  # seconds for a BOOTSEL drive to appear and be mounted after machine.bootloader()
INSTALL = {"picotool": "build picotool with USB support (libusb), or use the BOOTSEL drive",
           "dfu-util": "apt-get install dfu-util", "st-flash": "apt-get install stlink-tools",
           "openocd": "apt-get install openocd", "esptool": "pip install esptool"}


def add_arguments(p):
    p.add_argument("image", help="the firmware file the build wrote (.uf2, .dfu, .bin, .elf)")
    p.add_argument("--board", choices=sorted(BOARDS), metavar="NAME",
                   help="the board it must be for (default: the one the image names); one of "
                        "%s" % ", ".join(sorted(BOARDS)))
    p.add_argument("--device",
                   help="the board's serial port while MicroPython runs (checked, then put into "
                        "its bootloader), or for RP2 the BOOTSEL drive's mount point")
    p.add_argument("--tool", choices=TOOL_NAMES, help="how to write it (default: by board and format)")
    p.add_argument("--dry-run", action="store_true", help="check and say what would be done; write nothing")


@dataclass
class Plan:
    """What flashing will do: copy the image into `drive`, or run `argv`."""
    image: firmware.Image
    board: str
    tool: str
    argv: list = None
    drive: str = None
    bootloader_on: str = None  # a serial port whose MicroPython is put into its bootloader first

    def describe(self):
        if self.drive:
            return "copy %s to the BOOTSEL drive %s" % (self.image.path, self.drive)
        if self.argv:
            return " ".join(self.argv)
        return "%s, once the board is in its bootloader" % self.tool


def run(args):
    plan = make_plan(args.image, args.board, args.device, args.tool)
    if args.dry_run:
        print("%s: %s is for %s; would %s" % (problems.prog, args.image, plan.board,
                                             plan.describe()))
        return 0
    execute(plan)
    return 0


def make_plan(path, board_name=None, device=None, tool=None, mounts=None):
    """Check the image against the board and decide how to write it; a Plan. Raises CliError.

    Nothing is written; a serial --device is asked which board it is (sys.implementation._machine).
    mounts: mount points to search for a BOOTSEL drive (default: the system's).
    """
    image = firmware.read(path)
    if image.test_only:
        raise CliError(path, "this is the QEMU test-only image (its entropy is predictable, so "
                             "every key and nonce it makes can be guessed); it is never written "
                             "to a board", "build the image for your board and flash that")
    name, board = _board_for(image, board_name)
    kind = _kind(board.chip)
    formats = TOOLS[kind]
    if image.format not in formats:
        raise CliError(path, "a %s image cannot be flashed to %s" % (image.format, name),
                       "flash the board's %s file" % " or ".join(sorted(formats)))
    if image.format == "elf" and image.elf_machine != "arm":
        raise CliError(path, "an ELF for %s, not for an Arm Cortex-M" % image.elf_machine,
                       "flash the Arm image built for %s" % name)
    tool = tool or formats[image.format][0]
    if tool not in formats[image.format]:
        raise CliError(path, "--tool %s does not take a %s image for %s" % (tool, image.format, name),
                       "use %s" % " or ".join(formats[image.format]))
    plan = Plan(image, name, tool)
    if device and not os.path.isdir(device) and kind != "esp32":  # esptool checks the chip itself
        _check_running_board(device, name, board)
        if tool in ("drive", "picotool", "dfu-util"):  # ST-LINK needs no bootloader
            plan.bootloader_on = device
    if tool == "drive":
        _plan_drive(plan, board, device, mounts)
    else:
        plan.argv = _argv(plan, board, device)
    return plan


def _board_for(image, board_name):
    """(name, Board) the image is for, refused when it says it is for another."""
    if board_name:
        board = BOARDS[board_name]
        if image.machine and image.machine != board.machine:
            raise CliError(image.path, "the image is for %r, not %s (%r)"
                           % (image.machine, board_name, board.machine),
                           "flash the image built for %s, or give the right --board" % board_name)
        if image.chips and board.chip not in image.chips:
            raise CliError(image.path, "the image is for %s, not %s's %s"
                           % ("/".join(sorted(image.chips)), board_name, board.chip),
                           "flash the image built for %s" % board_name)
        if not image.machine:
            raise CliError(image.path, "no MicroPython board name in the image (no \"; <board> "
                                       "with <mcu>\" banner)", "flash a MicroPython image built "
                                       "for %s" % board_name)
        return board_name, board
    if not image.machine:
        raise CliError(image.path, "no MicroPython board name in the image (no \"; <board> with "
                                   "<mcu>\" banner)", "flash a MicroPython image built by make")
    for name, board in BOARDS.items():
        if board.machine == image.machine:
            if image.chips and board.chip not in image.chips:
                raise CliError(image.path, "the image names %r but is for %s" % (
                    image.machine, "/".join(sorted(image.chips))), "build it again")
            return name, board
    raise CliError(image.path, "the image is for %r, a board netsec flash does not know"
                   % image.machine, "give --board, one of %s" % ", ".join(sorted(BOARDS)))


def _kind(chip):
    return "rp2" if chip.startswith("rp2") else "stm32" if chip.startswith("stm32") else "esp32"


def _check_running_board(port, name, board):
    """The MicroPython on port must say it is `board`."""
    with Device(port) as running:
        try:
            machine = running.eval("__import__('sys').implementation._machine")
        except RemoteError as e:
            raise CliError(port, "the board does not say which board it is (%s)" % e.exception,
                           "put it into its bootloader yourself and flash without --device")
    if machine != board.machine:
        raise CliError(port, "the board there is %r, not %s (%r)" % (machine, name, board.machine),
                       "give the port of a %s, or flash the image built for this board" % name)


def _plan_drive(plan, board, device, mounts):
    """Find the BOOTSEL drive (or, after a bootloader entry, say where it will be looked for)."""
    if device and not plan.bootloader_on:
        drive = device
        if not os.path.isfile(os.path.join(drive, "INFO_UF2.TXT")):
            raise CliError(drive, "no INFO_UF2.TXT here: not a BOOTSEL drive",
                           "hold BOOTSEL while plugging the board in, and give the drive's mount "
                           "point")
        _check_drive(drive, plan, board)
        plan.drive = drive
        return
    if plan.bootloader_on:
        return  # the drive appears after machine.bootloader(): execute() waits for it
    drives = find_drives(mounts)
    if not drives:
        if find_tool("picotool"):
            plan.tool, plan.argv = "picotool", _argv(plan, board, None)
            return
        raise CliError(None, "no BOOTSEL drive found: no INFO_UF2.TXT on any of the %d mounted "
                             "filesystems%s, and picotool is not installed"
                       % (len(mount_points() if mounts is None else mounts), _unmounted_drives()),
                       "hold BOOTSEL while plugging the board in (it mounts as RPI-RP2 or RP2350), "
                       "or give --device with its serial port while MicroPython runs, or with "
                       "the drive's mount point")
    matching = [d for d in drives if _drive_chip(d) == board.chip]
    if not matching:
        _check_drive(drives[0], plan, board)  # raises, naming the drive's chip
    if len(matching) > 1:
        raise CliError(None, "%d BOOTSEL drives for %s: %s" % (len(matching), board.chip,
                                                               ", ".join(matching)),
                       "give the one to flash with --device")
    plan.drive = matching[0]


def _check_drive(drive, plan, board):
    chip = _drive_chip(drive)
    if chip != board.chip:
        raise CliError(drive, "this BOOTSEL drive is an %s, the image is for %s (%s)"
                       % (chip or "unknown chip", plan.board, board.chip),
                       "connect the board the image is for, or flash the image built for this one")


def _drive_chip(drive):
    """The chip a BOOTSEL drive's INFO_UF2.TXT names ("Board-ID: RPI-RP2"), or None."""
    try:
        with open(os.path.join(drive, "INFO_UF2.TXT"), errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "Board-ID":
                    return DRIVE_BOARD_IDS.get(value.strip())
    except OSError:
        pass
    return None


def mount_points():
    """The system's mount points (from /proc/self/mounts)."""
    with open("/proc/self/mounts") as f:
        # Fields are space-separated with spaces inside escaped as \040 (and tabs, newlines).
        return [line.split()[1].encode().decode("unicode_escape") for line in f if line.split()]


def find_drives(mounts=None):
    """Mount points holding an INFO_UF2.TXT: BOOTSEL (UF2 bootloader) drives."""
    return [m for m in (mount_points() if mounts is None else mounts)
            if os.path.isfile(os.path.join(m, "INFO_UF2.TXT"))]


def _unmounted_drives():
    """", but /dev/disk/by-label/RPI-RP2 is not mounted" for attached, unmounted drives."""
    labels = [os.path.join(LABELS, label) for label in DRIVE_BOARD_IDS
              if os.path.exists(os.path.join(LABELS, label))]
    return ", but %s is not mounted" % " and ".join(labels) if labels else ""


def _argv(plan, board, device):
    """The command line of the tool that writes plan.image."""
    path = plan.image.path
    if plan.tool == "picotool":
        return ["picotool", "load", "--verify", "--execute", path]
    if plan.tool == "dfu-util":
        argv = ["dfu-util", "--alt", "0", "--device", STM32_DFU_ID]
        if plan.image.format == "dfu":
            return argv + ["--dfuse-address", ":leave", "--download", path]
        return argv + ["--dfuse-address", STM32_FLASH + ":leave", "--download", path]
    if plan.tool == "st-flash":
        return ["st-flash", "--reset", "write", path, STM32_FLASH]
    if plan.tool == "openocd":
        return ["openocd", "-f", "interface/stlink.cfg", "-f", OPENOCD_TARGETS[board.chip],
                "-c", "program {%s} verify reset exit" % path]
    argv = ["esptool", "--chip", board.chip]
    if device:
        argv += ["--port", device]
    return argv + ["write-flash", ESP_OFFSETS.get(board.chip, "0x0"), path]


def find_tool(name):
    """The path of a flashing tool: on PATH, or beside this Python (esptool in netsec's venv)."""
    return shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))


def execute(plan):
    """Do what the plan says; print one line saying what was written where."""
    if plan.bootloader_on:
        _enter_bootloader(plan.bootloader_on)
        if plan.tool == "drive":
            plan.drive = _wait_for_drive(plan)
        else:
            time.sleep(BOOTLOADER_SETTLE)  # the board leaves USB and comes back as its bootloader
    if plan.drive:
        target = os.path.join(plan.drive, os.path.basename(plan.image.path))
        with open(plan.image.path, "rb") as source, open(target, "wb") as out:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())  # the boot ROM writes flash as blocks arrive: send them all
        print("%s: %s -> %s; the board writes it to flash and restarts"
              % (problems.prog, plan.image.path, plan.drive))
        return
    executable = find_tool(plan.argv[0])
    if not executable:
        raise CliError(None, "%s is not installed" % plan.argv[0], INSTALL[plan.argv[0]])
    result = subprocess.run([executable] + plan.argv[1:])
    if result.returncode:
        raise CliError(None, "%s exited with status %d (see its output above)"
                       % (plan.argv[0], result.returncode),
                       "is the board connected and in its bootloader? then run the command again")
    print("%s: %s written to %s with %s" % (problems.prog, plan.image.path, plan.board, plan.tool))


def _enter_bootloader(port):
    """machine.bootloader() on the board's MicroPython; the port goes away with it."""
    board = Device(port)
    try:
        board.start("import machine\nmachine.bootloader()")
    except (DeviceError, RemoteError):
        pass  # the USB serial port vanishes as the board resets: that is success
    finally:
        try:
            board.transport.close()
        except OSError:
            pass


def _wait_for_drive(plan):
    deadline = time.monotonic() + DRIVE_WAIT
    while time.monotonic() < deadline:
        drives = [d for d in find_drives() if _drive_chip(d) == BOARDS[plan.board].chip]
        if len(drives) == 1:
            return drives[0]
        time.sleep(0.5)
    label = next(k for k, chip in DRIVE_BOARD_IDS.items() if chip == BOARDS[plan.board].chip)
    raise CliError(plan.bootloader_on, "the board entered its bootloader but no BOOTSEL drive was "
                                       "mounted within %d s" % DRIVE_WAIT,
                   "mount it (udisksctl mount -b %s/%s) and run the command again with --device "
                   "MOUNTPOINT" % (LABELS, label))
