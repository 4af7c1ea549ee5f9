"""memcpy, memmove and memset of the bare-metal image (shared/libc/string0.c, firmware patch
0052: by words at any alignment) give the same bytes as a byte-by-byte copy, at every alignment
of source and destination and every length around the word and 16-byte steps; and TLS records
read in pieces of every size come back intact (mbedTLS copies each piece out of the record,
13 bytes into its buffer, then zeroises it: a memset that ran past its end would zero the rest).
The patch is for speed (bench/variants.py); these tests hold it to the functions' contract."""
import pytest

pytestmark = pytest.mark.qemu

LENGTHS = list(range(0, 36)) + [63, 64, 65, 100]


def test_copies_and_fills_at_every_alignment_match_byte_by_byte(guest):
    out = guest.exec(r"""
src = bytes((i * 7 + 3) & 255 for i in range(256))
lengths = %r
bad = []
for so in range(8):
    for do in range(8):
        for n in lengths:
            dst = bytearray(b'\xee' * 120)
            dst[do:do + n] = memoryview(src)[so:so + n]  # memcpy
            for i in range(120):
                if dst[i] != (src[so + i - do] if do <= i < do + n else 0xee):
                    bad.append(('memcpy', so, do, n))
                    break
for start in range(8):
    for n in lengths:
        b = bytearray(src[:120])
        b[start:start + n] = b''  # memmove down, overlapping
        expect = src[:120][:start] + src[:120][start + n:]
        if len(b) != len(expect) or any(b[i] != expect[i] for i in range(len(b))):
            bad.append(('memmove', start, n))
for width in range(1, 120):
    s = 'x'.center(width)  # memset with a non-zero fill, then memcpy
    middle = (width - 1) // 2
    if len(s) != width or any(s[i] != ('x' if i == middle else ' ') for i in range(width)):
        bad.append(('memset', width))
print(bad[:10])
""" % LENGTHS, timeout=300)
    assert out.strip().splitlines()[-1] == "[]", out


def test_tls_records_read_in_pieces_of_every_size_come_back_intact(guest):
    out = guest.exec(r"""
from netsec import selftest, tls
server_ctx = tls.server_context()
client_ctx = tls.client_context('localhost', cas=selftest.trust_anchors(), resume=False)
server, client = selftest.handshake(server_ctx, client_ctx, 'localhost')
data = bytes((i * 13 + 5) & 255 for i in range(1000))
bad = []
for piece in range(1, 18):
    assert server.write(data) == len(data)
    got = bytearray()
    for _ in range(2000):
        chunk = client.read(piece)
        if chunk:
            got.extend(chunk)
        if len(got) >= len(data):
            break
    if bytes(got) != data:
        bad.append(piece)
client.close(); server.close()
print(bad)
""", timeout=300)
    assert out.strip().splitlines()[-1] == "[]", out
