# Runs inside the QEMU guest (MicroPython), copied there by bench/cortex_m.py: TLS handshakes,
# heap and bulk throughput between a netsec.tls server and client context over
# netsec.selftest's in-memory pipe, both ends in this one guest.
#
# Time is counted with time.ticks_cpu(), the board's 25 MHz clock, in virtual time; the host
# turns ticks into instructions (under qemu -icount shift=0 an instruction takes 1 ns). Each
# measurement starts with _start(): sleep_ms(1) wakes the guest on a timer interrupt, which
# with QEMU's -icount sleep=off comes at an exact virtual instant, so everything after it
# repeats to the instruction, whenever the host's command arrived. Nothing prints until the
# end (a busy console could stall the guest for a host-dependent time), and nothing calls
# gc.collect() once the clock is locked (see handshakes()).
import gc
import io
import time

import tls as _tls
from netsec import selftest, tls

HOSTNAME = "localhost"
# RTC (year, month, day, weekday, h, m, s, subsecond); the bench's certificates are valid then.
BENCH_DATE = (2040, 1, 1, 6, 0, 0, 0, 0)
_ROUNDS = 100


def _start():
    """Lock to the clock's tick, then set a fixed date: the cost of date arithmetic (64-bit
    divisions in software) depends on the date, down to the microsecond."""
    import machine
    time.sleep_ms(1)
    machine.RTC().datetime(BENCH_DATE)


def _contexts(ca_file):
    with open(ca_file, "rb") as f:
        ca = f.read()
    # resume=False: every handshake measured here is a full one (resumption has its own rows).
    return tls.server_context(), tls.client_context(HOSTNAME, cas=(ca,), resume=False)


def _handshake(server_ctx, client_ctx):
    """selftest.handshake() with the ticks each end spent counted apart:
    (server, client, server ticks, client ticks)."""
    now, diff = time.ticks_cpu, time.ticks_diff
    server_end, client_end = selftest.pipe()
    t0 = now()
    server = server_ctx.wrap_socket(server_end, server_side=True, do_handshake_on_connect=False)
    t1 = now()
    client = client_ctx.wrap_socket(client_end, server_side=False, do_handshake_on_connect=False,
                                    server_hostname=HOSTNAME)
    server_ticks, client_ticks = diff(t1, t0), diff(now(), t1)
    sent = False
    for _ in range(_ROUNDS):
        if not sent:
            t0 = now()
            sent = client.write(b"ping") == 4
            client_ticks += diff(now(), t0)
        t0 = now()
        received = server.read(4)
        server_ticks += diff(now(), t0)
        if received == b"ping":
            return server, client, server_ticks, client_ticks
    raise tls.TLSError("no handshake after %d rounds" % _ROUNDS)


def handshakes(ca_file):
    """Two full handshakes on new contexts, the first (cold) and the second (warm): the
    negotiated suite and [(server ticks, client ticks), ...]. A new context's first
    handshake costs more (RSA makes its blinding values then). The heap is not sampled: a
    sample costs half a million instructions. No gc.collect() after the clock is locked: it
    scans stale stack words, whose values depend on when interrupts came before."""
    server_ctx, client_ctx = _contexts(ca_file)
    gc.collect()
    _start()
    runs = []
    for _ in range(2):
        server, client, server_ticks, client_ticks = _handshake(server_ctx, client_ctx)
        suite = client.cipher()
        client.close()
        server.close()
        runs.append((server_ticks, client_ticks))
    return suite, runs


def handshake_heap_peak(ca_file):
    """Peak heap in use during one handshake, both ends together, above the heap in use (after
    a collection) before it: sampled whenever the pipe moves bytes, garbage included."""
    server_ctx, client_ctx = _contexts(ca_file)
    _start()
    gc.collect()
    selftest.heap_peak = before = gc.mem_alloc()
    server, client, _, _ = _handshake(server_ctx, client_ctx)
    peak, selftest.heap_peak = selftest.heap_peak - before, None
    client.close()
    server.close()
    return peak


def _idle_server(server_ctx, client_ctx):
    server, client, _, _ = _handshake(server_ctx, client_ctx)
    # Like a keep-alive connection between requests: the server waits in a read.
    if server.read(4) is not None:
        raise tls.TLSError("an idle server session read data")
    client.close()  # the client's close_notify waits unread in the server's inbox
    return server


def idle_session(ca_file):
    """Heap an established server session holds while idle, its client gone (bytes)."""
    server_ctx, client_ctx = _contexts(ca_file)
    _idle_server(server_ctx, client_ctx).close()  # fills what the allocator keeps for reuse
    _start()
    gc.collect()
    before = gc.mem_alloc()
    server = _idle_server(server_ctx, client_ctx)
    gc.collect()
    held = gc.mem_alloc() - before
    server.close()
    return held


def sessions_until_full(ca_file, limit):
    """Open idle server sessions until the next handshake (server and client) no longer fits:
    (sessions held, heap they held, free heap left, what stopped the next one)."""
    server_ctx, client_ctx = _contexts(ca_file)
    _start()
    gc.collect()
    before = gc.mem_alloc()
    servers = []
    stopped_by = "the limit of %d sessions" % limit
    try:
        while len(servers) < limit:
            servers.append(_idle_server(server_ctx, client_ctx))
            gc.collect()
    except MemoryError:
        stopped_by = "MemoryError"
    except Exception as e:  # mbedTLS reports a failed allocation as an OSError
        stopped_by = str(tls.explain(e))
    gc.collect()
    result = (len(servers), gc.mem_alloc() - before, gc.mem_free(), stopped_by)
    for server in servers:
        server.close()
    return result


def _exchange(server_ctx, client_ctx, session=None):
    """One connection on mbedTLS contexts: handshake, then b"pong" back so that a TLS 1.3 ticket
    (sent after the handshake) is taken in. (suite, server ticks, client ticks, client session)."""
    now, diff = time.ticks_cpu, time.ticks_diff
    server_end, client_end = selftest.pipe()
    t0 = now()
    server = server_ctx.wrap_socket(server_end, server_side=True, do_handshake_on_connect=False)
    t1 = now()
    client = client_ctx.wrap_socket(client_end, server_side=False, do_handshake_on_connect=False,
                                    server_hostname=HOSTNAME, session=session)
    server_ticks, client_ticks = diff(t1, t0), diff(now(), t1)
    sent = got = False
    for _ in range(_ROUNDS):
        if not sent:
            t0 = now()
            sent = client.write(b"ping") == 4
            client_ticks += diff(now(), t0)
        t0 = now()
        got = server.read(4) == b"ping"
        server_ticks += diff(now(), t0)
        if got:
            break
    if not got:
        raise tls.TLSError("no handshake after %d rounds" % _ROUNDS)
    t0 = now()
    server.write(b"pong")
    t1 = now()
    pong = client.read(4)
    client_ticks += diff(now(), t1)
    server_ticks += diff(t1, t0)
    if pong != b"pong":
        raise tls.TLSError("no pong")
    suite, session = client.cipher(), client.session
    client.close()
    server.close()
    return suite, server_ticks, client_ticks, session


_PSK = {b"bench": bytes(range(32))}


def _psk_contexts(maximum_version):
    server = _tls.SSLContext(_tls.PROTOCOL_TLS_SERVER)
    server.set_ciphers(list(tls.PSK_CIPHERS))
    server.server_psk_keys = _PSK
    client = _tls.SSLContext(_tls.PROTOCOL_TLS_CLIENT)
    client.verify_mode = _tls.CERT_NONE
    client.set_ciphers(list(tls.PSK_CIPHERS))
    client.maximum_version = maximum_version
    client.psk_identity = b"bench"
    client.psk_key = _PSK[b"bench"]
    for ctx in (server, client):
        ctx.set_groups(list(tls.GROUPS))
    return server, client


def handshake_kinds(ca_file):
    """Full, resumed and PSK handshakes, TLS 1.3 and 1.2, on the mbedTLS contexts netsec.tls
    builds (the bench reaches past the policy only to cap the version or pick a group): {row:
    (suite, server ticks, client ticks)}. Each kind runs twice, the second counted: a new
    context's first handshake does one-time work. Resumed rows use the session of the
    connection before them."""
    server_ctx, client_ctx = _contexts(ca_file)
    server, client13 = server_ctx._native_context(), client_ctx._native_context()
    client12 = _contexts(ca_file)[1]._native_context()
    client12.maximum_version = _tls.TLSv1_2
    x25519 = _contexts(ca_file)[1]._native_context()
    x25519.set_groups(["x25519"])
    psk13, psk12 = _psk_contexts(_tls.TLSv1_3), _psk_contexts(_tls.TLSv1_2)
    rows = {}
    _start()  # once: a date set back later would put the tickets made so far in the future

    def counted(name, srv, cli, session=None):
        _exchange(srv, cli, session)  # the uncounted first
        # A collection the heap would otherwise need inside the counted one: the resumed ones
        # are short enough for it to dominate. Then the clock's tick is locked to again.
        gc.collect()
        time.sleep_ms(1)
        suite, st, ct, session = _exchange(srv, cli, session)
        rows[name] = (suite, st, ct)
        return session

    for name, (srv, cli), resumed in (("tls13_full", (server, client13), "tls13_resumed"),
                                      ("tls13_full_x25519", (server, x25519), None),
                                      ("tls12_full", (server, client12), "tls12_resumed_ticket"),
                                      ("tls13_psk", psk13, None), ("tls12_psk", psk12, None)):
        session = counted(name, srv, cli)
        if resumed:
            counted(resumed, srv, cli, session)
    return rows


def throughput(ca_file, total, chunk, suite=None):
    """Send `total` bytes client -> server in writes of `chunk` bytes (at most one TLS record)
    through an established session (suite: the one to use, else the policy's first):
    (suite, client ticks writing, server ticks reading)."""
    server_ctx, client_ctx = _contexts(ca_file)
    if suite:
        client_ctx._native_context().set_ciphers([suite])
    server, client, _, _ = _handshake(server_ctx, client_ctx)
    now, diff = time.ticks_cpu, time.ticks_diff
    data = memoryview(bytes(chunk))
    buf = bytearray(chunk)
    write_ticks = read_ticks = 0
    gc.collect()
    _start()
    for _ in range(total // chunk):
        t0 = now()
        sent = 0
        while sent < chunk:
            sent += client.write(data[sent:] if sent else data)
        t1 = now()
        received = 0
        while received < chunk:
            received += server.readinto(buf)  # the bytes themselves are not looked at
        t2 = now()
        write_ticks += diff(t1, t0)
        read_ticks += diff(t2, t1)
    suite = client.cipher()
    client.close()
    server.close()
    return suite, write_ticks, read_ticks


class _SampledSocket(io.IOBase):
    """A non-blocking network socket as the stream a TLS socket wraps, sampling the heap (like
    netsec.selftest's pipe) whenever bytes move."""

    def __init__(self, sock):
        self.sock = sock

    def readinto(self, buf):
        selftest._sample_heap()
        try:
            return self.sock.readinto(buf)
        except OSError:  # EAGAIN: nothing yet
            return None

    def write(self, buf):
        selftest._sample_heap()
        try:
            return self.sock.write(buf)
        except OSError:
            return None

    def ioctl(self, request, arg):
        return 0  # close and poll: the caller closes the socket itself


def served_heap_peak(port):
    """Serve one TLS handshake on the network to a client on the host, then b"ping": the peak
    heap in use by the server side alone during it (sampled whenever bytes move), above the
    heap in use before it. Prints 'listening' when the client may connect."""
    import socket
    from netsec import lan
    lan.up()
    server_ctx = tls.server_context()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(1)
    print("listening")
    conn, _ = listener.accept()
    conn.setblocking(False)
    gc.collect()
    selftest.heap_peak = before = gc.mem_alloc()
    server = server_ctx.wrap_socket(_SampledSocket(conn), server_side=True,
                                    do_handshake_on_connect=False)
    for _ in range(100000):
        if server.read(4) == b"ping":
            break
        time.sleep_ms(1)
    else:
        raise tls.TLSError("no ping from the host's client")
    peak, selftest.heap_peak = selftest.heap_peak - before, None
    server.close()
    conn.close()
    listener.close()
    return peak
