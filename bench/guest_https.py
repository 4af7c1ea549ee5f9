# Runs inside the networked QEMU guest, copied there by bench/cortex_m_https.py: the demo
# server (netsec.demo) on port 443 at a static address, and a console that answers each "m"
# the host sends with "busy A B T": A = machine.busy_cycles() (system clock cycles run in
# answer to input) now, B = busy cycles when the previous mark ended, T =
# machine.timer_cycles() (cycles only a deadline woke the guest for). Between A and the end
# of the mark (B of the next line) the mark prints, sets the clock and collects garbage, all
# outside the counts: the host counts from one mark's end to the next one's A. Mark k sets the
# clock to 2030-01-01 00:00:00 plus 2k seconds, so each request formats the response's Date
# header once (the server does so once a second), from the same time on every run.
import asyncio
import gc
import machine
import sys

from netsec import demo, lan

# QEMU's user network: the guest's address, mask, gateway and DNS (no DHCP traffic or renewals).
STATIC = ("10.0.2.15", "255.255.255.0", "10.0.2.2", "10.0.2.3")


async def _marks():
    stdin = asyncio.StreamReader(sys.stdin)
    rtc = machine.RTC()
    k, ended = 0, 0
    while True:
        await stdin.read(1)
        print("busy", machine.busy_cycles(), ended, machine.timer_cycles())
        minutes, seconds = divmod(2 * k, 60)
        rtc.datetime((2030, 1, 1, 0, 0, minutes, seconds, 0))
        k += 1
        gc.collect()
        ended = machine.busy_cycles()


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
