"""Relay one connection between stdin/stdout and a TCP port on 127.0.0.1.

    python tcprelay.py PORT

QEMU's guestfwd runs this once per connection the guest opens (its stdin and stdout are that
connection), so a guest service address leads to a host service on the loopback only. Ends
when either side closes. A standalone script (no netsec imports): QEMU starts it with /bin/sh.
"""
import os
import selectors
import socket
import sys


def relay(port):
    upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    upstream.settimeout(None)
    # The file descriptors themselves: sys.stdout.buffer has no .raw when Python runs
    # unbuffered (PYTHONUNBUFFERED), and buffering would hold bytes back anyway.
    guest_in, guest_out = 0, 1
    sel = selectors.DefaultSelector()
    sel.register(guest_in, selectors.EVENT_READ)
    sel.register(upstream, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is upstream:
                data = upstream.recv(65536)
                if not data:
                    return
                while data:
                    data = data[os.write(guest_out, data):]
            else:
                data = os.read(guest_in, 65536)
                if not data:
                    upstream.shutdown(socket.SHUT_WR)
                    sel.unregister(guest_in)
                    continue
                upstream.sendall(data)


if __name__ == "__main__":
    try:
        relay(int(sys.argv[1]))
    except OSError as e:
        print("tcprelay: 127.0.0.1:%s: %s" % (sys.argv[1], e), file=sys.stderr)
        sys.exit(1)
