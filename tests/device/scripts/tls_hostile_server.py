# A netsec.tls server on HOST:PORT (argv 4, argv 1) with server_context(client_auth=argv 2,
# ticket_lifetime=argv 3, "-" for the default), for tests/device/test_tls_hostile.py. Per line
# received it answers "hello SUBJECT" (the verified client, psk:IDENTITY) or "hello anonymous",
# or, for the line "heap", "heap FREE" (gc.mem_free() after a collection); it prints "refused
# KIND MESSAGE" from tls.explain() for a failed connection, and "closed" after every connection.
import sys, asyncio, gc
from netsec import tls
port, client_auth, lifetime, host = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = tls.server_context(client_auth, **({} if lifetime == "-" else {"ticket_lifetime": int(lifetime)}))

async def handle(r, w):
    try:
        line = await r.readline()
        subject = tls.log_connection(r, "server", ctx)
        while line:
            if line == b"heap\n":
                gc.collect()
                reply = "heap %d" % gc.mem_free()
            else:
                reply = "hello %s" % (subject or "anonymous")
            w.write((reply + "\n").encode())
            await w.drain()
            line = await r.readline()
    except Exception as e:
        error = tls.explain(e)
        print("refused", error.kind, error)
    w.close()
    await w.wait_closed()
    print("closed")

async def main():
    await asyncio.start_server(handle, host, port, ssl=ctx)
    print("ready", port)
    while True:
        await asyncio.sleep(60)

asyncio.run(main())
