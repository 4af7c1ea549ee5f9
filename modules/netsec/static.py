"""Files from flash for netsec.server: app.static(prefix, directory) serves them with ETag/304,
Cache-Control and precompressed .gz siblings, streamed in small chunks."""
import os

from netsec.http import HTTPError
from netsec.message import Response, guess_type

_S_IFDIR = 0x4000
# The directory netsec.tls reads replacement credentials (private keys) from: never served,
# whatever the static mapping, in any letter case (FAT ignores it).
CREDENTIALS_DIR = "netsec-credentials"


class Static:
    """GET handler for files under a directory; the normalized request path cannot leave it."""

    def __init__(self, directory, cache_control):
        self.directory = directory.rstrip("/")
        self.cache_control = cache_control

    async def __call__(self, request):
        path = self.directory + "/" + request.params["path"]
        if ("/" + CREDENTIALS_DIR + "/") in ("/" + path.lower() + "/"):
            raise HTTPError(404, "no such file")
        stat = _stat(path)
        if stat and stat[0] & _S_IFDIR:
            path = path.rstrip("/") + "/index.html"
            stat = _stat(path)
        ctype = guess_type(path)
        gz = _stat(path + ".gz")
        headers = [("Cache-Control", self.cache_control)]
        if gz:
            headers.append(("Vary", "Accept-Encoding"))
            if "gzip" in _accepted_codings(request.headers):
                headers.append(("Content-Encoding", "gzip"))
                path, stat = path + ".gz", gz
        if not stat or stat[0] & _S_IFDIR:
            raise HTTPError(404, "no such file")
        etag = '"%x-%x"' % (stat[6], stat[8])
        headers.append(("ETag", etag))
        if _etag_matches(request.headers.get("if-none-match"), etag):
            return Response(b"", 304, headers)
        return Response.file(path, ctype, headers, stat[6])


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _accepted_codings(headers):
    out = []
    for item in headers.tokens("accept-encoding"):
        semi = item.find(";")
        name = item[:semi].strip() if semi >= 0 else item
        if semi >= 0 and item[semi + 1:].replace(" ", "") in ("q=0", "q=0.0", "q=0.00",
                                                               "q=0.000"):
            continue  # explicitly refused
        out.append(name)
    return out


def _etag_matches(header, etag):
    if not header:
        return False
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag == etag or tag == "W/" + etag:
            return True
    return False
