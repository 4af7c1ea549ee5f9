"""The QEMU boards' tickless idle (boards/QEMU_MPS2_AN385/ticks.c, lan9118.c): a waiting guest
sleeps until input or its next deadline, nothing wakes it on a schedule, and a received frame
wakes it at once (the LAN9118's receive interrupt; lwIP itself still runs in thread context)."""
import socket
import statistics
import time

import pytest

from netsec_cli import qemu

ECHO_READY = "echo ready"
# A TCP echo on guest port 443 that waits in poll() with no timeout: only input (or one of
# lwIP's timers, the nearest 100 ms away) can wake it.
ECHO = """import select, socket
from netsec import lan
lan.up()
s = socket.socket()
s.bind(("0.0.0.0", 443))
s.listen(1)
print("%s")
c, _ = s.accept()
p = select.poll()
p.register(c, select.POLLIN)
while True:
    p.poll()
    data = c.recv(64)
    if not data:
        break
    c.send(data)
c.close()
""" % ECHO_READY
ROUND_TRIPS = 30


def test_a_sleeping_guest_is_not_woken_on_a_schedule(guest):
    # With a 1 ms tick the guest woke 2000 times in this sleep, each a round of polling (a
    # hundred cycles or more: the IRQ, the event hook, the driver's status read, lwIP's timer
    # check); tickless, the sleep's deadline and lwIP's own timers wake it a few times (~10,000
    # cycles quiet, 18,832 seen once on a loaded host), and the rest is the Python code around
    # the sleep.
    code = ("import machine, time\n"
            "b, t = machine.busy_cycles(), machine.timer_cycles()\n"
            "time.sleep_ms(2000)\n"
            "print(machine.busy_cycles() - b + machine.timer_cycles() - t)")
    cycles = min(int(guest.exec(code, timeout=30)) for _ in range(2))
    assert 0 <= cycles < 40000, cycles


@pytest.fixture
def echo(qemu_image, tmp_path):
    guest = qemu.Guest(qemu_image, log_path=tmp_path / "qemu.log",
                       network=qemu.GuestNetwork(hostfwd={443: 0}))
    try:
        guest.start(ECHO, ECHO_READY)
        yield guest
    finally:
        guest.stop()


def test_a_received_frame_wakes_the_guest_at_once(echo):
    round_trips = []
    with socket.create_connection(("127.0.0.1", echo.host_port(443)), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(ROUND_TRIPS):
            started = time.monotonic()
            sock.sendall(bytes([i]))
            assert sock.recv(64) == bytes([i])
            round_trips.append(time.monotonic() - started)
            time.sleep(0.01)  # the guest back asleep before the next byte
    # Woken only by lwIP's timers, a byte would wait 50 ms in the middle.
    assert statistics.median(round_trips) < 0.02, round_trips
