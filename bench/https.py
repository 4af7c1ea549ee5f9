"""Row 4: the host image's HTTPS server against microdot (as it comes, and with Nagle's algorithm
off), with a plain asyncio TLS responder as the floor. All run on the unix image with the same
TLS context and certificate (https_servers.py); a CPython client on loopback takes turns between
them (the order rotating each round), so that the machine's other load falls on all alike.

Scenarios: (a) a page load: the page and its 10 assets, one after another, reusing the
connection whenever the server keeps it open; (b) one request per new connection; (c) 4
clients at once, each reusing its connection where it can. Wall-clock figures from a shared
machine: read the ratios, not the absolute numbers.
"""
import http.client
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from netsec_cli.process import stop_process

ROOT = Path(__file__).resolve().parents[1]
SERVER_SCRIPT = Path(__file__).resolve().parent / "https_servers.py"
CA = ROOT / "tests" / "certs" / "default" / "ca.pem"  # issued the default Net_Security's server
MICRODOT_VERSION = "2.7.0"
SERVERS = ("netsec", "microdot", "microdot-nodelay", "floor")
ASSETS = 10  # as in https_servers.py
ROUNDS = 5
PAGE_LOADS = 3  # per round
NEW_CONNECTIONS = 20  # per round
CLIENTS, REQUESTS_PER_CLIENT = 4, 15  # per round


class Unavailable(Exception):
    """A server could not be run; the message says why (it goes into the table)."""


def fetch_microdot(directory):
    """microdot MICRODOT_VERSION from the package index, unpacked for MicroPython's import
    path; downloaded once into `directory`. Returns the directory to put on sys.path."""
    lib = directory / ("microdot-%s" % MICRODOT_VERSION)
    if (lib / "microdot" / "microdot.py").is_file():
        return lib
    directory.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--dest", str(directory), "microdot==%s" % MICRODOT_VERSION],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wheels = sorted(directory.glob("microdot-%s-*.whl" % MICRODOT_VERSION))
    if download.returncode or not wheels:
        raise Unavailable("microdot %s could not be downloaded: %s"
                          % (MICRODOT_VERSION, download.stdout.strip()[-300:]))
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if name.startswith("microdot/") and name.endswith(".py"):
                wheel.extract(name, lib)
    return lib


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One https_servers.py server on the unix image, on its own loopback port."""

    def __init__(self, kind, image, microdot_lib, log_dir, client_context):
        self.kind = kind
        self.port = _free_port()
        self.log_path = log_dir / ("%s.log" % kind)
        command = [str(image), str(SERVER_SCRIPT), kind, str(self.port), str(microdot_lib or "")]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT)
        self._wait_until_serving(client_context)

    def _wait_until_serving(self, client_context, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                request(self.port, client_context, [("/", "close")])
                return
            except ssl.SSLCertVerificationError as e:
                self.stop()
                raise Unavailable("the client does not trust the %s server's certificate (%s): "
                                  "the bench expects the default Net_Security, issued by %s"
                                  % (self.kind, e.verify_message, CA))
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise Unavailable("the %s server did not answer on port %d; it said: %s"
                          % (self.kind, self.port, self.log_tail()))

    def log_tail(self):
        return " ".join(self.log_path.read_text(errors="replace").split()[-40:])

    def stop(self):
        stop_process(self.process)


class _CountingConnection(http.client.HTTPSConnection):
    """An HTTPS connection that counts its TLS handshakes (http.client reconnects by itself
    when the server closed the connection after a response)."""

    handshakes = 0

    def connect(self):
        super().connect()
        self.handshakes += 1


def request(port, context, paths):
    """GET each (path, connection header) in turn on one client, reconnecting when the server
    closes; check every response. Returns the handshakes made."""
    connection = _CountingConnection("localhost", port, context=context, timeout=30)
    try:
        for path, connection_header in paths:
            connection.request("GET", path, headers={"Connection": connection_header})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or not body:
                raise RuntimeError("GET %s answered %d with %d bytes"
                                   % (path, response.status, len(body)))
            if connection_header == "close":
                connection.close()
    finally:
        connection.close()
    return connection.handshakes


def _page_load(port, context):
    paths = [("/", "keep-alive")] + [("/asset/%d.css" % i, "keep-alive") for i in range(ASSETS)]
    handshakes = sum(request(port, context, paths) for _ in range(PAGE_LOADS))
    return PAGE_LOADS * len(paths), handshakes


def _new_connections(port, context):
    handshakes = request(port, context, [("/asset/0.css", "close")] * NEW_CONNECTIONS)
    return NEW_CONNECTIONS, handshakes


def _concurrent(port, context):
    results, errors = [], []

    def client(i):
        try:
            results.append(request(port, context, [("/asset/%d.css" % (i % ASSETS), "keep-alive")]
                                   * REQUESTS_PER_CLIENT))
        except Exception as e:  # reported below, from the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return CLIENTS * REQUESTS_PER_CLIENT, sum(results)


SCENARIOS = (
    ("page_load", "%d page loads (1 HTML + %d assets each), connections reused where allowed"
     % (PAGE_LOADS, ASSETS), _page_load),
    ("new_connection", "one request per new connection", _new_connections),
    ("concurrent", "%d concurrent clients, %d requests each" % (CLIENTS, REQUESTS_PER_CLIENT),
     _concurrent),
)


def measure(image, work_dir):
    """Every scenario on every server that runs, ROUNDS times, taking turns."""
    context = ssl.create_default_context(cafile=str(CA))
    unavailable, running = {}, {}
    try:
        microdot_lib = fetch_microdot(work_dir / "microdot")
    except Unavailable as e:
        microdot_lib = None
        unavailable.update((kind, str(e)) for kind in SERVERS if kind.startswith("microdot"))
    samples = {(kind, name): [] for kind in SERVERS for name, _, _ in SCENARIOS}
    try:
        for kind in SERVERS:
            if kind not in unavailable:
                try:
                    running[kind] = Server(kind, image, microdot_lib, work_dir, context)
                except Unavailable as e:
                    unavailable[kind] = str(e)
        for round_number in range(ROUNDS):
            for name, _, scenario in SCENARIOS:
                kinds = list(running)
                shift = round_number % max(len(kinds), 1)
                for kind in kinds[shift:] + kinds[:shift]:
                    start = time.perf_counter()
                    try:
                        requests, handshakes = scenario(running[kind].port, context)
                    except Exception as e:  # the server broke: the others go on
                        unavailable[kind] = "%s failed (%s): %r; its log ends: %s" % (
                            kind, name, e, running[kind].log_tail())
                        running.pop(kind).stop()
                        continue
                    samples[(kind, name)].append((requests, handshakes,
                                                  time.perf_counter() - start))
    finally:
        for server in running.values():
            server.stop()
    return _summary(samples, unavailable)


def _summary(samples, unavailable):
    scenarios = {}
    for name, description, _ in SCENARIOS:
        figures = {}
        for kind in SERVERS:
            if kind in unavailable:
                figures[kind] = {"unavailable": unavailable[kind]}
                continue
            runs = samples[(kind, name)]
            figures[kind] = {
                "requests_per_s": statistics.median(r / s for r, _, s in runs),
                "requests_per_round": runs[0][0],
                "handshakes_per_round": runs[0][1],
                "each_round_s": [s for _, _, s in runs],
            }
        scenarios[name] = {"description": description, "servers": figures}
    return {"microdot_version": MICRODOT_VERSION, "rounds": ROUNDS, "scenarios": scenarios}
