# Runs inside the networked QEMU guest, copied there by bench/cortex_m_https.py: the demo
# server (netsec.demo) on port 443 at a static address, and a console that answers each "m"
# the host sends with "busy A B T": A = machine.busy_cycles() (system clock cycles run in
# answer to input), then a garbage collection, B = busy cycles after it, T =
# machine.timer_cycles() (cycles only a deadline woke the guest for). The host brackets each
# request with two marks and counts B of the first to A of the second, so no collection falls
# inside a count unless the request itself needs one.
import asyncio
import gc
import machine
import sys

from netsec import demo, lan

# QEMU's user network: the guest's address, mask, gateway and DNS (no DHCP traffic or renewals).
STATIC = ("10.0.2.15", "255.255.255.0", "10.0.2.2", "10.0.2.3")


async def _marks():
    stdin = asyncio.StreamReader(sys.stdin)
    while True:
        await stdin.read(1)
        before = machine.busy_cycles()
        gc.collect()
        print("busy", before, machine.busy_cycles(), machine.timer_cycles())


async def _no_watchdog():
    pass


async def main(max_sessions):
    lan.up(static=STATIC)
    app = demo.make_app(443, "0.0.0.0", "www")
    app.max_sessions = max_sessions
    # The server's 100 ms watchdog runs by the clock, not per request: off, so that none of its
    # rounds lands inside a count (the sessions' deadlines are not reached here).
    app._watchdog = _no_watchdog
    asyncio.create_task(_marks())
    await app.serve()
