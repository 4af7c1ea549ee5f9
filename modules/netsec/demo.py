"""The netsec demo: a device status page over HTTPS, a JSON endpoint and a static file.

    micropython -m netsec.demo [PORT] [WWW_DIR]

On the unix image it listens on https://127.0.0.1:8443 by default, on a board on port 443 of
every interface. WWW_DIR (default "www") holds the static files; a first start creates it with
the page's stylesheet. Or from code: `from netsec import demo; demo.main(port=8443)`.
"""
import gc
import os
import sys
import time

import Net_Security
from netsec import log
from netsec.server import Response, Server

STYLE = b"""body { font-family: sans-serif; margin: 2em auto; max-width: 40em; color: #222; }
h1 { font-size: 1.4em; } table { border-collapse: collapse; }
td { padding: .3em 1em .3em 0; border-bottom: 1px solid #ddd; vertical-align: top; }
.warn { background: #fee; border: 1px solid #c33; padding: .5em; }
"""

_started = time.ticks_ms()


def _escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _machine():
    """os.uname().machine ("mps2-an385 with Cortex-M3"); the unix port has no os.uname, but
    MicroPython gives every port the same text as sys.implementation._machine."""
    uname = getattr(os, "uname", None)
    return uname().machine if uname else sys.implementation._machine


def status(app):
    """What the status page and /api/status show."""
    gc.collect()
    cert = Net_Security.INFO.get("SERVER_CERT", {})
    return {
        "machine": _machine(),
        "uptime_s": time.ticks_diff(time.ticks_ms(), _started) // 1000,
        "free_heap": gc.mem_free(),
        "tls_sessions": app.stats["connections"],
        "requests": app.stats["requests"],
        "active_sessions": app.stats["active"],
        "certificate": {"subject": cert.get("subject"), "expires": cert.get("not_after"),
                        "test_only": Net_Security.TEST_ONLY},
    }


def _page(info):
    cert = info["certificate"]
    rows = (("Machine", info["machine"]), ("Uptime", "%d s" % info["uptime_s"]), ("Free heap", "%d bytes" % info["free_heap"]),
            ("TLS sessions served", info["tls_sessions"]), ("Requests served", info["requests"]),
            ("Sessions open now", info["active_sessions"]),
            ("Certificate subject", cert["subject"]), ("Certificate expires", cert["expires"]))
    warning = ('<p class="warn">This device uses the public TEST credentials: anyone can '
               'impersonate it. Make your own with <code>netsec keygen</code> and '
               '<code>netsec convert</code>.</p>') if cert["test_only"] else ""
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>netsec device</title>'
            '<link rel="stylesheet" href="/static/style.css"></head><body>'
            '<h1>netsec device status</h1>%s<table>%s</table>'
            '<p><a href="/api/status">/api/status</a> (JSON)</p></body></html>'
            % (warning, "".join("<tr><td>%s</td><td>%s</td></tr>" % (k, _escape(v))
                                for k, v in rows)))


def _ensure_www(www):
    try:
        os.stat(www)
    except OSError:
        os.mkdir(www)
        with open(www + "/style.css", "wb") as f:
            f.write(STYLE)
        log.info("demo: created %s/ with style.css" % www)


def make_app(port, host, www):
    app = Server(host=host, port=port)

    @app.route("/")
    async def index(request):
        return Response(_page(status(app)), content_type="text/html; charset=utf-8")

    @app.route("/api/status")
    async def api_status(request):
        return status(app)

    app.static("/static", www)
    return app


def main(port=None, www="www", host=None):
    """Serve the demo until interrupted."""
    on_unix = sys.platform in ("linux", "darwin")
    port = port or (8443 if on_unix else 443)
    host = host or ("127.0.0.1" if on_unix else "0.0.0.0")
    _ensure_www(www)
    app = make_app(port, host, www)
    log.info("demo: open https://%s:%d/" % ("127.0.0.1" if host == "0.0.0.0" else host, port))
    app.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None,
         sys.argv[2] if len(sys.argv) > 2 else "www")
