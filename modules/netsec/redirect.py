"""The plain-HTTP listener of netsec.server (redirect_port): every request gets a 301 to the
same URL over HTTPS, or 400 when its Host is not uri-host[:port]; then the connection closes."""
import asyncio

from netsec import http
from netsec.http import HTTPError
from netsec.message import Response, error_response


def https_location(head, https_port):
    """The https:// URL for a request head (HTTPError 400 when its authority is unusable)."""
    if not head.host:
        raise HTTPError(400, "no Host to redirect to", True)
    host, _ = http.split_authority(head.host)  # the parser checked it; this drops the port
    if not host:
        raise HTTPError(400, "no Host to redirect to", True)
    port = "" if https_port == 443 else ":%d" % https_port
    # As sent (still encoded, with its query): a decoded path could hold CR LF or a '?'.
    return "https://" + host + port + head.origin_form


async def redirect_one(server, stream):
    """Read one request head from a plain-HTTP stream, answer it, close."""
    sock = stream.s
    try:
        parser = http.RequestParser()
        head = None
        buf = bytearray(512)
        while head is None:
            n = await asyncio.wait_for(stream.readinto(buf), server.head_timeout)
            if n is None:
                continue
            if not n:
                sock.close()
                return
            parser.feed(buf, 0, n)
            head = parser.head
        response = Response.redirect(https_location(head, server.port), 301)
    except HTTPError as e:
        response, head = error_response(e), None
    except Exception:  # timeouts, resets: nothing to answer
        sock.close()
        return
    try:
        framing, _, _ = http.frame_response(head, response.status, response.length, True)
        stream.write(http.response_head(response.status, response.headers + framing)
                     + response.body)
        await asyncio.wait_for(stream.drain(), server.idle_timeout)
    except Exception:
        pass
    sock.close()
