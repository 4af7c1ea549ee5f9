# Runs inside the QEMU guest (MicroPython), copied there by bench/cortex_m.py: TLS handshakes,
# heap and bulk throughput between a netsec.tls server and client context over
# netsec.selftest's in-memory pipe, both ends in this one guest.
#
# Time is counted with time.ticks_cpu(), the 25 MHz SysTick count, in virtual time; the host
# turns ticks into instructions (under qemu -icount shift=0 an instruction takes 1 ns). Each
# measurement starts with _start(): sleep_ms(1) wakes the guest on a SysTick interrupt, which
# with QEMU's -icount sleep=off comes at an exact virtual instant, so everything after it
# repeats to the instruction, whenever the host's command arrived. Nothing prints until the
# end (a busy console could stall the guest for a host-dependent time), and nothing calls
# gc.collect() once the clock is locked (see handshakes()).
import gc
import time

from netsec import selftest, tls

HOSTNAME = "localhost"
# RTC (year, month, day, weekday, h, m, s, subsecond); the bench's certificates are valid then.
BENCH_DATE = (2040, 1, 1, 6, 0, 0, 0, 0)
_ROUNDS = 100


def _start():
    """Lock to the SysTick, then set a fixed date: the cost of date arithmetic (64-bit
    divisions in software) depends on the date, down to the microsecond."""
    import machine
    time.sleep_ms(1)
    machine.RTC().datetime(BENCH_DATE)


def _contexts(ca_file):
    with open(ca_file, "rb") as f:
        ca = f.read()
    return tls.server_context(), tls.client_context(HOSTNAME, cas=(ca,))


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
    client.close()  # the client's close_notify waits unread in the server's inbox
    return server


def idle_session(ca_file):
    """Heap an established server session holds while idle, its client gone (bytes)."""
    server_ctx, client_ctx = _contexts(ca_file)
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


def throughput(ca_file, total, chunk):
    """Send `total` bytes client -> server in writes of `chunk` bytes (at most one TLS record)
    through an established session: (suite, client ticks writing, server ticks reading)."""
    server_ctx, client_ctx = _contexts(ca_file)
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
