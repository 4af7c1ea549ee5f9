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
from netsec import der, log, tls
from netsec.server import Response, Server, url

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


def certificate():
    """Subject, expiry and test-only flag of the certificate new connections get: the frozen
    one, or the one rotated in through netsec-credentials/."""
    cert = tls.server_certificate()
    _, _, _, not_after, subject, _ = der.certificate(cert)
    return {"subject": der.name_text(subject), "expires": der.time_text(not_after),
            "test_only": Net_Security.TEST_ONLY and cert == Net_Security.SERVER_CERT}


def status(app):
    """What the status page and /api/status show."""
    gc.collect()
    stats = app.stats
    return {
        "machine": _machine(),
        "uptime_s": time.ticks_diff(time.ticks_ms(), _started) // 1000,
        "free_heap": gc.mem_free(),
        "tls_sessions": stats["handshakes"],
        "failed_handshakes": stats["handshake_failures"],
        "requests": stats["requests"],
        "active_sessions": stats["active"],
        "refused_backlog_full": stats["dropped"],
        "closed_idle_for_waiting_client": stats["reclaimed"],
        "closed_timed_out": stats["timed_out"],
        "certificate": certificate(),
    }


_ROWS = (("Machine", "machine"), ("Uptime (s)", "uptime_s"), ("Free heap (bytes)", "free_heap"),
         ("TLS sessions served", "tls_sessions"), ("Failed TLS handshakes", "failed_handshakes"),
         ("Requests served", "requests"), ("Sessions open now", "active_sessions"),
         ("Refused: backlog full", "refused_backlog_full"),
         ("Closed idle for a waiting client", "closed_idle_for_waiting_client"),
         ("Closed after a timeout", "closed_timed_out"))


def _page(info):
    cert = info["certificate"]
    rows = [(label, info[key]) for label, key in _ROWS]
    rows += [("Certificate subject", cert["subject"]), ("Certificate expires", cert["expires"])]
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
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    log.info("demo: open " + url("https", shown, port))
    app.run()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None,
         sys.argv[2] if len(sys.argv) > 2 else "www")
