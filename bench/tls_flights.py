"""Blocking HTTPS/1.1 clients for bench/cortex_m_https.py that send each TLS flight in one write.

    client = FlightClient(port, context, "localhost")  # CPython ssl: connect (TCP_NODELAY)
    client = SeededClient(port, "localhost", seed=3)   # tlslite-ng, its random numbers from seed
    body = client.get("/")       # handshake on first use, then GET: the body of a 200 response
    client.close()               # close_notify and FIN, then wait for the server's FIN

Why: what the guest runs for a request depends on what the host sends and how its bytes arrive.
A client that writes record by record (curl, ssl.SSLSocket) leaves it to the host's timing
whether a flight reaches the guest in one TCP segment or several, and each extra segment is
another wake-up and read in the guest: here every flight goes out in one sendall() (with TLS
1.3 the client's Finished together with the first request). And the server's handshake work
depends on the client's random ECDHE share (bignum arithmetic takes longer or shorter by the
values): SeededClient draws its randomness (client random, key shares) from random.Random(seed)
instead of os.urandom, for benchmarks only, so a handshake repeats to the instruction.
Raises one of ERRORS: OSError, ssl.SSLError, tlslite's TLSError, or RuntimeError for a response
that is not 200 or has no Content-Length.
"""
import contextlib
import os
import random
import socket
import ssl

from tlslite import TLSConnection
from tlslite.errors import TLSError

RECV_BYTES = 65536
RECEIVE_BUFFER = 1 << 20  # the kernel caps it at net.core.rmem_max (twice that, in fact)
# What a failed request raises.
ERRORS = (OSError, ssl.SSLError, TLSError, RuntimeError)


def _connect(port, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Room for a whole response: QEMU's user network then never has to hold back what the
    # guest sends, and acknowledges it the same way whatever the pace of this process's reads.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.connect(("127.0.0.1", port))
    return sock


def _request(hostname, path):
    return b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), hostname.encode())


def _response_body(read, path):
    """The body of one HTTP/1.1 response, read with read() (some bytes, or b"" at the end)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _more(read)
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split()[1] != "200":
        raise RuntimeError("GET %s: %s" % (path, lines[0]))
    length = [int(line.split(":", 1)[1]) for line in lines[1:]
              if line.lower().startswith("content-length:")]
    if not length:
        raise RuntimeError("GET %s: no Content-Length" % path)
    while len(body) < length[0]:
        body += _more(read)
    return body


def _more(read):
    data = read()
    if not data:
        raise ConnectionError("the server closed the connection mid-response")
    return data


def _close(sock):
    """FIN, then wait for the server's: it has then handled the close too."""
    try:
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(RECV_BYTES):
            pass
    except OSError:
        pass
    finally:
        sock.close()


class FlightClient:
    """CPython's ssl over memory BIOs."""

    def __init__(self, port, context, hostname, timeout=60):
        self.hostname = hostname
        self.sock = _connect(port, timeout)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._in, self._out, server_hostname=hostname)
        self._handshaken = False

    def _flush(self):
        data = self._out.read()
        if data:
            self.sock.sendall(data)

    def _receive(self):
        data = self.sock.recv(RECV_BYTES)
        if not data:
            self._in.write_eof()
        self._in.write(data)

    def _read(self):
        while True:
            try:
                return self.tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()

    def get(self, path):
        """One keep-alive GET; the body of its 200 response."""
        while not self._handshaken:
            try:
                self.tls.do_handshake()
                self._handshaken = True  # the last flight goes out with the request
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self.tls.write(_request(self.hostname, path))
        self._flush()
        return _response_body(self._read, path)

    def close(self):
        try:
            self.tls.unwrap()
        except (ssl.SSLError, OSError):
            pass  # the server's close_notify is not awaited
        try:
            self._flush()
        except OSError:
            pass
        _close(self.sock)


class _Flights:
    """A socket whose writes wait until the next read (or flush()): one flight, one sendall()."""

    def __init__(self, sock):
        self.sock, self.pending = sock, b""

    def send(self, data):
        self.pending += bytes(data)
        return len(data)

    sendall = send

    def flush(self):
        if self.pending:
            self.sock.sendall(self.pending)
            self.pending = b""

    def recv(self, size):
        self.flush()
        return self.sock.recv(size)

    def __getattr__(self, name):
        return getattr(self.sock, name)


@contextlib.contextmanager
def _random_from(seed):
    # tlslite-ng and python-ecdsa call os.urandom for every random number they need.
    urandom, os.urandom = os.urandom, random.Random(seed).randbytes
    try:
        yield
    finally:
        os.urandom = urandom


class SeededClient:
    """tlslite-ng (TLS 1.3, its default groups and suites), random numbers from seed."""

    def __init__(self, port, hostname, seed, timeout=60):
        self.hostname, self.seed = hostname, seed
        self.sock = _Flights(_connect(port, timeout))
        self.tls = None

    def get(self, path):
        """One keep-alive GET; the body of its 200 response."""
        if self.tls is None:
            with _random_from(self.seed):
                self.tls = TLSConnection(self.sock)
                self.tls.handshakeClientCert(serverName=self.hostname)
        self.tls.write(_request(self.hostname, path))
        self.sock.flush()
        return _response_body(self.tls.read, path)

    def close(self):
        _close(self.sock.sock)
