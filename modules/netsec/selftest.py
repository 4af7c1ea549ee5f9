"""Prove that TLS works on this board, with the credentials netsec.tls uses here.

    >>> from netsec import selftest
    >>> selftest.run()
    selftest: OK TLSv1.3 TLS1-3-CHACHA20-POLY1305-SHA256 peer=CN=localhost,... verified as 'localhost'; heap peak 57.3 KB; 129 ms

A server and a client context from netsec.tls (the frozen Net_Security, or the files on flash
that override it) do a full handshake over an in-memory pipe and exchange one message each way.
The client end checks the server certificate as a peer would: against the module's own
SERVER_CA and for the first name it is made for.
No network is involved: a failure here is in the credentials, the clock or the firmware's TLS.
Failures raise netsec.tls.TLSError saying what went wrong.

The heap peak counts both ends, in the MicroPython heap: where mbedTLS allocates from the C
library instead (the unix port), its buffers are not in that figure.
"""
import gc
import io
import time

import Net_Security
from netsec import der, tls

# None: heap not measured. Set it to gc.mem_alloc() before a handshake, and the pipes raise it
# to the most heap in use (garbage included) whenever they move bytes. Each sample walks the
# whole heap (about 0.5 M instructions on a 192 KB heap), so it is off unless asked for.
heap_peak = None


def _sample_heap():
    global heap_peak
    if heap_peak is not None:
        used = gc.mem_alloc()
        if used > heap_peak:
            heap_peak = used


class PipeEnd(io.IOBase):
    """One end of an in-memory duplex pipe: what one end writes, the other reads. Reads with
    nothing to read answer None, which the tls module takes as EAGAIN (a non-blocking socket)."""

    def __init__(self):
        self.inbox = bytearray()
        self.peer = None

    def readinto(self, buf):
        _sample_heap()
        n = min(len(buf), len(self.inbox))
        if not n:
            return None
        buf[:n] = memoryview(self.inbox)[:n]
        self.inbox[:n] = b""  # in place: no new buffer per read
        return n

    def write(self, buf):
        _sample_heap()
        self.peer.inbox.extend(buf)  # a copy: buf is only lent for this call
        return len(buf)

    def ioctl(self, request, arg):
        return 0  # close and poll: nothing to do in memory


def pipe():
    """(server end, client end) of a new in-memory duplex pipe."""
    server_end, client_end = PipeEnd(), PipeEnd()
    server_end.peer, client_end.peer = client_end, server_end
    return server_end, client_end


def handshake(server_ctx, client_ctx, server_hostname, rounds=100):
    """Join the two contexts over a new pipe and drive both ends until the handshake is done
    and b"ping" has reached the server. Returns the (server, client) TLS sockets."""
    server_end, client_end = pipe()
    server = server_ctx.wrap_socket(server_end, server_side=True, do_handshake_on_connect=False)
    client = client_ctx.wrap_socket(client_end, server_side=False, do_handshake_on_connect=False,
                                    server_hostname=server_hostname)
    sent = False
    for _ in range(rounds):
        # The client's handshake moves when it writes (None until it is done), the server's
        # when it reads.
        if not sent:
            sent = client.write(b"ping") == 4
        if server.read(4) == b"ping":
            return server, client
    raise tls.TLSError("no TLS handshake after %d exchanges between the two ends: the "
                       "firmware's TLS is stuck" % rounds)


def trust_anchors():
    """What the client end trusts by default: SERVER_CA, the CA the server certificate chains to
    (netsec convert records its --ca there); in modules made before SERVER_CA existed, the CAs
    the module names. TLSError when there are none."""
    ca = getattr(Net_Security, "SERVER_CA", None)
    cas = (ca,) if ca else tuple(Net_Security.CLIENT_CAS) + tuple(Net_Security.EMAIL_SERVER_CAS)
    if not cas:
        raise tls.TLSError("selftest: Net_Security has no SERVER_CA (the CA its SERVER_CERT chains "
                           "to) and no other CA: make it again with `netsec convert`, or pass "
                           "cas=", "credentials")
    return cas


def own_name():
    """The first DNS name (else IP address) SERVER_CERT is made for, from Net_Security.INFO."""
    sans = getattr(Net_Security, "INFO", {}).get("SERVER_CERT", {}).get("sans", ())
    for kind in ("DNS:", "IP:"):
        for name in sans:
            if name.startswith(kind):
                return name[len(kind):]
    raise tls.TLSError("selftest: Net_Security.INFO names no host for SERVER_CERT: pass "
                       "server_hostname=", "credentials")


def run(server_hostname=None, cas=None):
    """Handshake and exchange b"ping"/b"pong"; print a one-line report and return it as a dict
    (protocol, cipher, peer, heap_peak bytes, ms). server_hostname: the name the server's
    certificate must be valid for (default: own_name()); cas: DER CA certificates the client
    end trusts (default: trust_anchors())."""
    global heap_peak
    server_hostname = server_hostname or own_name()
    server_ctx = tls.server_context()
    client_ctx = tls.client_context(server_hostname, cas=trust_anchors() if cas is None else cas)
    gc.collect()
    start_heap = heap_peak = gc.mem_alloc()
    start = time.ticks_ms()
    try:
        server, client = handshake(server_ctx, client_ctx, server_hostname)
        server.write(b"pong")
        pong = client.read(4)
    except Exception as e:  # what the handshake raised, explained
        error = tls.explain(e)
        raise tls.TLSError("selftest: " + str(error), error.kind)
    finally:
        ms = time.ticks_diff(time.ticks_ms(), start)
        peak, heap_peak = heap_peak - start_heap, None
    if pong != b"pong":
        raise tls.TLSError("selftest: the client received %r instead of b'pong'" % (pong,))
    suite, protocol = client.cipher()
    peer = der.name_text(der.certificate(client.getpeercert(True))[4])
    client.close()
    server.close()
    print("selftest: OK %s %s peer=%s verified as %r; heap peak %.1f KB; %d ms"
          % (protocol, suite, peer, server_hostname, peak / 1024, ms))
    return {"protocol": protocol, "cipher": suite, "peer": peer, "heap_peak": peak, "ms": ms}
