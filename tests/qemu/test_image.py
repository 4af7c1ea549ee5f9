"""The QEMU image has what a netsec board needs: libraries, heap, stdin, Ctrl-C (the frozen modules:
tests/hw, which runs on this image too)."""
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from harness import require_tool

pytestmark = pytest.mark.qemu

ROOT = Path(__file__).resolve().parents[2]


def test_board_libraries(guest):
    out = guest.exec(
        "import tls, hashlib, binascii, json, select, asyncio, errno, os, time, machine\n"
        "print(binascii.hexlify(hashlib.md5(b'abc').digest()).decode())\n"
        "print(binascii.hexlify(hashlib.sha1(b'abc').digest()).decode())\n"
        "print(binascii.hexlify(hashlib.sha256(b'abc').digest()).decode())\n"
        "print(json.dumps({'errno': errno.EAGAIN}))\n"
        "print(hasattr(tls, 'SSLContext'), hasattr(select, 'poll'), hasattr(asyncio, 'start_server'))")
    lines = out.split()
    assert lines[:3] == [hashlib.md5(b"abc").hexdigest(), hashlib.sha1(b"abc").hexdigest(),
                         hashlib.sha256(b"abc").hexdigest()]
    assert lines[3:] == ['{"errno":', '11}', "True", "True", "True"]


def test_heap_is_sized_like_a_pico_w(guest):
    heap_kb = int(os.environ.get("HEAP_KB", "192"))
    total = guest.eval("__import__('gc').mem_free() + __import__('gc').mem_alloc()")
    # The GC keeps its allocation table inside the heap: a few percent less is usable.
    assert 0.95 * heap_kb * 1024 <= total <= heap_kb * 1024


def test_boot_warns_loudly_about_test_only_entropy(qemu_guest):
    boot_output = qemu_guest.soft_reset()
    assert "WARNING: TEST-ONLY INSECURE ENTROPY" in boot_output
    assert "predictable" in boot_output


@pytest.mark.parametrize("defines", [["-DQEMU_SOC_MPS2"], ["-DNETSEC_QEMU_TEST_ONLY_INSECURE_ENTROPY=1"], []])
def test_test_only_entropy_refuses_to_build_for_any_other_board(defines):
    # Only the QEMU mps2 SoC together with this board's own macro may compile it.
    source = ROOT / "boards/QEMU_MPS2_AN385/test_only_insecure_entropy.c"
    compiler = require_tool("arm-none-eabi-gcc")
    result = subprocess.run([compiler, "-fsyntax-only"] + defines + [str(source)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "for the QEMU mps2 board only" in result.stderr


def test_asyncio_runs_tasks_and_sleeps(guest):
    out = guest.exec(
        "import asyncio, time\n"
        "async def nap(ms, log):\n"
        "    await asyncio.sleep_ms(ms)\n"
        "    log.append(ms)\n"
        "async def main():\n"
        "    log = []\n"
        "    start = time.ticks_ms()\n"
        "    await asyncio.gather(nap(60, log), nap(20, log))\n"
        "    print(log, time.ticks_diff(time.ticks_ms(), start))\n"
        "asyncio.run(main())")
    order, elapsed = out.rsplit(" ", 1)
    assert order == "[20, 60]"
    assert 60 <= int(elapsed) < 1000


def test_select_poll_sees_console_input(guest):
    # The guest polls stdin; only once the host has typed a character may poll report it.
    code = ("import select, sys\n"
            "p = select.poll()\n"
            "p.register(sys.stdin, select.POLLIN)\n"
            "print('idle', len(p.poll(0)))\n"
            "print('ready', len(p.poll(10000)), sys.stdin.read(1))\n")
    guest.start(code, ready="idle 0\r\n", timeout=10)
    guest.send(b"z")
    out, err = guest.finish(timeout=10)
    assert err == ""
    assert out.split() == ["idle", "0", "ready", "1", "z"]


def test_ctrl_c_interrupts_running_code(guest):
    guest.start("import time\nprint('looping')\nwhile True:\n    time.sleep_ms(1)\n",
                ready="looping")
    out, err = guest.interrupt(timeout=10)
    assert "KeyboardInterrupt" in err
