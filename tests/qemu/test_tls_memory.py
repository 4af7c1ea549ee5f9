"""TLS sessions and the 192 KB heap of the QEMU image, both ends in the guest (netsec.selftest's
in-memory pipe): an idle established session gives back its record buffers and takes them again
for the next record (firmware patch 0051); the heap comes back to its level after 100
handshakes and after a handshake that ran out of memory. (How many keep-alive clients the heap
serves at once: tests/qemu/test_network.py, with the clients on the host.)"""
import pytest

pytestmark = pytest.mark.qemu

# Heap left in use after the handshakes, above the level before them (bytes): MicroPython's
# allocator rounds to 16-byte blocks and the contexts keep a few small allocations.
LEAK_BOUND = 512
# Fragmentation bound: afterwards the heap must still have a free block this large, room for
# the largest allocation of a handshake (the 16.4 KB input record buffer) with margin. Where the
# largest block ends up varies with the heap's layout (from 97 KB before to between 33 KB and
# 108 KB after 100 handshakes): small blocks that outlive a handshake (Python objects, the few
# that mbedTLS's allocator keeps for reuse, firmware/mbedtls/netsec_alloc.c) sit where the last
# handshakes left them.
LARGEST_BLOCK_AFTER = 24 * 1024

# Guest-side helpers, defined once per test (each test starts on a fresh heap).
_HELPERS = r"""
import gc
from netsec import selftest, tls

server_ctx = tls.server_context()
client_ctx = tls.client_context('localhost', cas=selftest.trust_anchors(), resume=False)

def session():
    # A handshake; then both ends wait in a read, like a keep-alive connection between requests.
    server, client = selftest.handshake(server_ctx, client_ctx, 'localhost')
    assert server.read(4) is None and client.read(4) is None
    return server, client

def exchange(server, client):
    # One request and one response on an established session.
    assert client.write(b'GET /') == 5
    assert server.read(5) == b'GET /'
    assert server.write(b'200 OK') == 6
    assert client.read(6) == b'200 OK'

def used():
    gc.collect()
    return gc.mem_alloc()

def largest_block():
    # The largest bytearray the heap can give now, to 256 bytes.
    gc.collect()
    low, high = 0, gc.mem_free()
    while high - low > 256:
        middle = (low + high) // 2
        try:
            block = bytearray(middle)
        except MemoryError:
            high = middle
        else:
            del block
            low = middle
    gc.collect()
    return low
"""


def run(guest, code, timeout=120):
    """Run the helpers and then code in the guest; the value of its last printed line."""
    out = guest.exec(_HELPERS + code, timeout=timeout)
    return eval(out.strip().splitlines()[-1])  # a tuple of numbers printed by the guest


def test_an_idle_session_gives_back_its_record_buffers_and_takes_them_again(guest):
    held, after_exchange = run(guest, r"""
server, client = session()  # fills what mbedTLS's allocator keeps for reuse (netsec_alloc.c)
server.close(); client.close()
before = used()
server, client = session()
held = used() - before
exchange(server, client)  # the buffers come back for the next request
exchange(server, client)
server.read(4)
client.read(4)
print((held, used() - before))
""")
    print("an idle session, both ends: %d bytes" % held)
    # Both ends of one session: at full size the record buffers alone are 2 x 20.6 KB.
    assert held < 2 * 6 * 1024, "an idle session pair holds %d bytes" % held
    assert after_exchange <= held + LEAK_BOUND


def test_a_session_short_of_heap_for_its_buffers_fails_the_read_and_keeps_the_session(guest):
    errno, sent = run(guest, r"""
import errno
server, client = session()
gc.collect()
hog = []
try:  # take the whole heap in small pieces, so nothing near 16 KB is left
    while True:
        hog.append(bytearray(1024))
except MemoryError:
    pass
try:
    server.read(5)
    code = None
except OSError as e:
    code = e.errno
hog = None
exchange(server, client)
server.close(); client.close()
print((code == errno.ENOMEM, 'kept'))
""")
    assert errno, "the read without heap for the buffers did not raise OSError(ENOMEM)"
    assert sent == "kept"


def test_the_heap_returns_to_its_level_after_100_handshakes(guest):
    before, after, block_before, block_after = run(guest, r"""
server, client = session()  # the first handshake makes what the contexts keep
server.close(); client.close()
before, block_before = used(), largest_block()
for _ in range(100):
    server, client = session()
    exchange(server, client)
    client.close(); server.close()
server = client = None
print((before, used(), block_before, largest_block()))
""", timeout=600)
    print("100 handshakes: heap %+d bytes, largest block %+d bytes"
          % (after - before, block_after - block_before))
    assert after - before <= LEAK_BOUND, "100 handshakes left %d bytes" % (after - before)
    assert block_after >= LARGEST_BLOCK_AFTER, (block_before, block_after)


def test_the_heap_returns_to_its_level_after_a_handshake_runs_out_of_memory(guest):
    failed, before, after, block_before, block_after = run(guest, r"""
server, client = session()
server.close(); client.close()
before, block_before = used(), largest_block()
hog = []
try:  # fill the heap, then give back 40 KB: too little for both ends of a handshake
    while True:
        hog.append(bytearray(1024))
except MemoryError:
    del hog[-40:]
try:
    session()
    failed = None
except MemoryError:
    failed = 'MemoryError'
except OSError as e:  # mbedTLS reports a failed allocation as an error code
    failed = str(tls.explain(e))
hog = None
server, client = session()  # and the next handshake works
exchange(server, client)
server.close(); client.close()
server = client = None
print((failed, before, used(), block_before, largest_block()))
""")
    print("failed with %s; heap %+d bytes, largest block %+d bytes"
          % (failed, after - before, block_after - block_before))
    assert failed, "the handshake did not run out of memory"
    assert after - before <= LEAK_BOUND, "the failed handshake left %d bytes" % (after - before)
    assert block_after >= LARGEST_BLOCK_AFTER, (block_before, block_after)
