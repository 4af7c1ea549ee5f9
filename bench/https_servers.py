# Runs on the unix image (MicroPython), started by bench/https.py:
#
#     micropython bench/https_servers.py SERVER PORT [MICRODOT_DIR]
#
# Serves the same site on 127.0.0.1:PORT over TLS, with the same context (netsec.tls's
# server_context() from the frozen Net_Security): an HTML page and ASSETS small assets.
# SERVER: netsec; microdot as it comes; microdot-nodelay, the same with Nagle's algorithm off
# (microdot writes a response in several pieces, and Nagle's algorithm holds back each piece
# after the first until the client's delayed ACK); floor, the least an asyncio TLS server can
# do: read a request head, write the response in one piece, keep the connection open.
import asyncio
import sys

from netsec import tls

ASSETS = 10
ASSET = b"/* a small stylesheet */\n" + b"p { margin: 0 }\n" * 60  # about 1 KB
PAGE = (b"<!doctype html><title>bench</title>\n"
        + b"".join(b'<link rel="stylesheet" href="/asset/%d.css">\n' % i for i in range(ASSETS))
        + b"<p>" + b"benchmark page " * 64 + b"</p>\n")


def body_for(path):
    """(body, content type) for a path of the site, or None."""
    if path == "/":
        return PAGE, "text/html; charset=utf-8"
    if path.startswith("/asset/") and path.endswith(".css"):
        return ASSET, "text/css"
    return None


def serve_netsec(port, context):
    from netsec.server import Response, Server

    app = Server(tls=context, host="127.0.0.1", port=port)

    @app.route("/")
    def page(request):
        return Response(PAGE, content_type="text/html; charset=utf-8")

    @app.route("/asset/<name>")
    def asset(request):
        return Response(ASSET, content_type="text/css")

    app.run()


def serve_microdot(port, context, microdot_dir):
    sys.path.insert(0, microdot_dir)
    from microdot import Microdot

    app = Microdot()

    @app.route("/")
    async def page(request):
        return PAGE, 200, {"Content-Type": "text/html; charset=utf-8"}

    @app.route("/asset/<name>")
    async def asset(request, name):
        return ASSET, 200, {"Content-Type": "text/css"}

    app.run(host="127.0.0.1", port=port, ssl=context)


class NoDelay:
    """The context, but Nagle's algorithm is turned off on each socket before it is wrapped."""

    def __init__(self, context):
        self.context = context

    def wrap_socket(self, sock, **options):
        sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: the unix port lacks the names
        return self.context.wrap_socket(sock, **options)


async def _floor_client(reader, writer):
    head = b""
    try:
        while True:
            data = await reader.read(1024)
            if not data:
                break
            head += data
            if b"\r\n\r\n" not in head:
                continue
            path = head.split(b" ", 2)[1].decode()
            head = b""  # one request at a time: clients here wait for each answer
            body, content_type = body_for(path) or (b"not found\n", "text/plain")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                         % (content_type.encode(), len(body), body))
            await writer.drain()
    except OSError:
        pass  # the client went away
    writer.close()
    await writer.wait_closed()


def serve_floor(port, context):
    async def main():
        await asyncio.start_server(_floor_client, "127.0.0.1", port, ssl=context)
        while True:
            await asyncio.sleep(3600)

    asyncio.run(main())


def main(argv):
    kind, port = argv[1], int(argv[2])
    context = tls.server_context()
    if kind == "netsec":
        serve_netsec(port, context)
    elif kind == "microdot":
        serve_microdot(port, context, argv[3])
    elif kind == "microdot-nodelay":
        serve_microdot(port, NoDelay(context), argv[3])
    elif kind == "floor":
        serve_floor(port, NoDelay(context))
    else:
        raise SystemExit("https_servers.py: unknown server %r (netsec, microdot, "
                         "microdot-nodelay or floor)" % kind)


main(sys.argv)
