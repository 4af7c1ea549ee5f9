# A netsec.tls server on HOST:PORT (argv 1, 2): server_context(client_auth=argv 3,
# minimum_version=argv 4). Per line received it logs the connection (first line only) and answers
# "hello SUBJECT" (the verified client, psk:IDENTITY) or "hello anonymous"; a failed handshake
# prints "refused KIND MESSAGE" from tls.explain().
import sys, asyncio
from netsec import tls
host, port, client_auth, minimum_version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = tls.server_context(client_auth, minimum_version=minimum_version)

async def handle(r, w):
    try:
        line = await r.readline()
        subject = tls.log_connection(r, "server", ctx)
        while line:
            w.write(("hello %s\n" % (subject or "anonymous")).encode())
            await w.drain()
            line = await r.readline()
    except Exception as e:
        error = tls.explain(e)
        print("refused", error.kind, error)
    w.close()
    await w.wait_closed()

async def main():
    await asyncio.start_server(handle, host, port, ssl=ctx)
    print("ready", port)
    while True:
        await asyncio.sleep(60)

asyncio.run(main())
