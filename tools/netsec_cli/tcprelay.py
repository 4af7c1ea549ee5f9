"""Relay one connection between stdin/stdout and a TCP port on 127.0.0.1.

    python tcprelay.py PORT

QEMU's guestfwd runs this once per connection the guest opens (stdin, stdout and stderr are all
that connection), so a guest service address leads to a host service on the loopback only. Ends
when either side closes. When the host service is down it prints nothing (that would go to the
guest) and exits: the guest sees its connection closed. A standalone script (no netsec imports):
QEMU starts it with /bin/sh.
"""
import os
import selectors
import socket
import sys

GUEST_IN, GUEST_OUT = 0, 1


def relay(port):
    upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    upstream.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(GUEST_IN, selectors.EVENT_READ)
    sel.register(upstream, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is upstream:
                data = upstream.recv(65536)
                if not data:
                    return
                while data:
                    data = data[os.write(GUEST_OUT, data):]
            else:
                data = os.read(GUEST_IN, 65536)
                if not data:
                    upstream.shutdown(socket.SHUT_WR)
                    sel.unregister(GUEST_IN)
                    continue
                upstream.sendall(data)


if __name__ == "__main__":
    try:
        relay(int(sys.argv[1]))
    except OSError:
        sys.exit(1)
