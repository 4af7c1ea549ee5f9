# A netsec.tls server on HOST:PORT (argv 3, default 127.0.0.1; argv 1) with client_auth=MODE
# (argv 2), for the device tests. Per connection it logs the connection and answers
# "hello SUBJECT" (the verified client) or "hello anonymous", or prints "refused KIND MESSAGE"
# from tls.explain(); "unusable MESSAGE" if the credentials give no server context at all.
import sys, asyncio
from netsec import tls
port, client_auth = int(sys.argv[1]), sys.argv[2]
host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"

async def handle(r, w):
    try:
        await r.readline()
        subject = tls.log_connection(r, "server", ctx)
        w.write(("hello %s\n" % (subject or "anonymous")).encode())
        await w.drain()
    except Exception as e:
        error = tls.explain(e)
        print("refused", error.kind, error)
    w.close()
    await w.wait_closed()

async def main():
    global ctx
    try:
        ctx = tls.server_context(client_auth)
    except tls.TLSError as e:
        print("unusable", e)
        return
    await asyncio.start_server(handle, host, port, ssl=ctx)
    print("ready", port)
    while True:
        await asyncio.sleep(60)

asyncio.run(main())
