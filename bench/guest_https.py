# Runs inside the networked QEMU guest, copied there by bench/cortex_m_https.py: the demo
# server (netsec.demo) on port 443, and a console that answers each line the host sends with
# "busy N", N = machine.busy_cycles(): system clock cycles the guest spent running, not asleep
# in WFI. The host brackets each request with two such marks.
import asyncio
import machine
import sys

from netsec import demo, lan


async def _marks():
    stdin = asyncio.StreamReader(sys.stdin)
    while True:
        await stdin.readline()
        print("busy", machine.busy_cycles())


async def main(max_sessions):
    lan.up()
    app = demo.make_app(443, "0.0.0.0", "www")
    app.max_sessions = max_sessions
    asyncio.create_task(_marks())
    await app.serve()
