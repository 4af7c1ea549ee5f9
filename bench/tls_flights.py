"""A blocking HTTPS/1.1 client that sends each TLS flight in one write, for bench/cortex_m_https.py.

    client = FlightClient(port, context, "localhost")  # TCP connect (TCP_NODELAY), no TLS yet
    body = client.get("/")                 # handshake, then GET; bytes of a 200 response's body
    client.close()                         # close_notify, FIN, and wait for the server's FIN

Why: what the guest runs for a request depends on how the host's bytes reach it. A client that
writes record by record (curl, ssl.SSLSocket) leaves it to the host's timing whether a flight
reaches the guest in one TCP segment or several, and each extra segment is another wake-up and
read in the guest. Here TLS runs over memory BIOs and every flight (with TLS 1.3 the client's
Finished together with the first request) goes out in one sendall(). Raises OSError,
ssl.SSLError, or RuntimeError for a response that is not 200 or has no Content-Length.
"""
import socket
import ssl

RECV_BYTES = 65536


class FlightClient:
    def __init__(self, port, context, hostname, timeout=60):
        self.hostname = hostname
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
            raise ConnectionError("the server closed the connection")
        self._in.write(data)

    def _read(self):
        while True:
            try:
                return self.tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()

    def handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self._receive()
        self._handshaken = True  # the last flight goes out with the first request

    def get(self, path):
        """One keep-alive GET; the body of its 200 response."""
        if not self._handshaken:
            self.handshake()
        self.tls.write(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), self.hostname.encode()))
        self._flush()
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._read()
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if lines[0].split()[1] != "200":
            raise RuntimeError("GET %s: %s" % (path, lines[0]))
        length = [int(line.split(":", 1)[1]) for line in lines[1:]
                  if line.lower().startswith("content-length:")]
        if not length:
            raise RuntimeError("GET %s: no Content-Length" % path)
        while len(body) < length[0]:
            body += self._read()
        return body

    def close(self):
        """close_notify and FIN in one go, then wait until the server has closed its end."""
        try:
            try:
                self.tls.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass
            self._flush()
            self.sock.shutdown(socket.SHUT_WR)
            while self.sock.recv(RECV_BYTES):
                pass
        except OSError:
            pass
        finally:
            self.sock.close()
