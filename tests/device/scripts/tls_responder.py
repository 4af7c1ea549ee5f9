# A minimal TLS responder on the unix image: the server identity comes from the frozen
# Net_Security. Serves `count` connections on 127.0.0.1:port, each answered with one line.
import socket
import sys

import tls
import Net_Security

port, count = int(sys.argv[1]), int(sys.argv[2])
ctx = tls.SSLContext(tls.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(Net_Security.SERVER_CERT, Net_Security.SERVER_KEY)

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
listener.listen(2)
print("ready", port)
for _ in range(count):
    client, _ = listener.accept()
    try:
        conn = ctx.wrap_socket(client, server_side=True)
        conn.readline()
        conn.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from %s\n" % Net_Security.INFO.get("SERVER_CERT", {}).get("subject", "netsec").encode())
        print("served", conn.cipher())
        conn.close()
    except OSError as e:
        print("handshake failed", e)
        client.close()
listener.close()
