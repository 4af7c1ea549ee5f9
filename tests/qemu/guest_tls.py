# Runs inside the QEMU guest (MicroPython), sent by test_tls.py: a TLS server and a TLS client,
# both in this one guest, joined by an in-memory transport instead of sockets. Each end is
# non-blocking: reads with nothing to read answer None (EAGAIN to the tls module), and the two
# sides are pumped in turn until the handshake is done and one message has gone each way.
# The heap in use (garbage included) is sampled whenever mbedTLS moves bytes.
import gc
import io

import Net_Security
import tls


heap_peak = 0


def sample_heap():
    global heap_peak
    heap_peak = max(heap_peak, gc.mem_alloc())


class PipeEnd(io.IOBase):
    """One end of an in-memory duplex pipe: what one end writes, the other reads."""

    def __init__(self):
        self.inbox = bytearray()
        self.peer = None

    def readinto(self, buf):
        sample_heap()
        n = min(len(buf), len(self.inbox))
        if not n:
            return None  # nothing yet: the tls module sees EAGAIN, as from a non-blocking socket
        buf[:n] = self.inbox[:n]
        self.inbox = self.inbox[n:]
        return n

    def write(self, buf):
        sample_heap()
        self.peer.inbox.extend(buf)  # copy: buf is only lent for this call
        return len(buf)

    def ioctl(self, request, arg):
        return 0  # close and poll: nothing to do in memory


def pipe():
    a, b = PipeEnd(), PipeEnd()
    a.peer, b.peer = b, a
    return a, b


def server_context():
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(Net_Security.SERVER_CERT, Net_Security.SERVER_KEY)
    return ctx


def client_context():
    """A verifying client that trusts every CA the frozen Net_Security names."""
    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED
    for ca in Net_Security.CLIENT_CAS + Net_Security.EMAIL_SERVER_CAS:
        ctx.load_verify_locations(ca)  # cadata, one DER certificate per call (positional only)
    return ctx


def handshake(server_hostname, rounds=100):
    """Connect a client to a server over a pipe, exchange b"ping"/b"pong"; return a report."""
    global heap_peak
    gc.collect()
    heap_before = heap_peak = gc.mem_alloc()
    server_end, client_end = pipe()
    server = server_context().wrap_socket(server_end, server_side=True, do_handshake_on_connect=False)
    client = client_context().wrap_socket(
        client_end, server_side=False, do_handshake_on_connect=False, server_hostname=server_hostname)
    ping_sent = False
    for _ in range(rounds):
        # Writing drives the client's handshake; it answers None until the handshake is done.
        if not ping_sent:
            ping_sent = client.write(b"ping") == 4
        # Reading drives the server's handshake.
        if server.read(4) == b"ping":
            server.write(b"pong")
            pong = None
            while pong is None:
                pong = client.read(4)
            report = {
                "cipher": client.cipher(),
                "server_cipher": server.cipher(),
                "peer_cert_is_server_cert": client.getpeercert(True) == Net_Security.SERVER_CERT,
                "pong": pong,
                "heap_peak": heap_peak - heap_before,
            }
            client.close()
            server.close()
            return report
    raise AssertionError("no TLS handshake after %d rounds" % rounds)
