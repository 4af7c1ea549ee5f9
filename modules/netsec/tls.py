# netsec.tls: the device's TLS policy, and the only module that touches tls.SSLContext.
#
# Credentials come from the frozen Net_Security module. Files in OVERRIDE_DIR on flash replace
# them field by field (see _load), and every new connection checks with os.stat whether those
# files changed: a certificate is rotated by copying files with mpremote, no reboot. A new set
# that is broken or whose key does not belong to its certificate is refused with a logged error
# and the previous credentials stay in use.
#
# Policy: TLS 1.3 and 1.2 (minimum configurable), Mozilla's "intermediate" suites and groups
# (ECDHE or TLS 1.3 with AES-GCM or ChaCha20-Poly1305; X25519, P-256, P-384), Extended Master
# Secret, no renegotiation (the mbedTLS profile), peers verified by default. Servers issue
# session tickets and select ALPN http/1.1; clients resume their last session with a server.
# Pre-shared keys (PSK in Net_Security) give contexts that use nothing else. Revocation (REVOKED), certificate dates against netsec.clock and the check that
# the clock is set at all run in verify_callback during the handshake.
import errno
import os
import tls as _tls

import Net_Security
from netsec import clock, der, log

OVERRIDE_DIR = "netsec-credentials"  # relative to the working directory: / or /flash on boards

# Forward secrecy and authenticated encryption only (Mozilla "intermediate"); the server picks
# in this order: TLS 1.3 first, ECDSA before RSA (the default keys are EC), and within each the
# cheapest on a Cortex-M for equal security (bench/: make bench).
CIPHERS = (
    "TLS1-3-CHACHA20-POLY1305-SHA256",
    "TLS1-3-AES-128-GCM-SHA256",
    "TLS1-3-AES-256-GCM-SHA384",
    "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
    "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
)

# With a pre-shared key instead of certificates: TLS 1.3 (psk_dhe_ke, set by the firmware), then
# TLS 1.2 ECDHE-PSK (forward secrecy) and plain PSK suites (RFC 4279, 5487, 7905).
PSK_CIPHERS = CIPHERS[:3] + (
    "TLS-ECDHE-PSK-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-PSK-WITH-CHACHA20-POLY1305-SHA256",
    "TLS-PSK-WITH-AES-128-GCM-SHA256",
    "TLS-PSK-WITH-AES-256-GCM-SHA384",
)

# (EC)DHE groups, Mozilla intermediate's, cheapest on a Cortex-M first: P-256 has optimised
# arithmetic in the profile, X25519 costs several times more there (make bench). A TLS 1.3 client
# sends its key share for the first; a server takes the share the client sent.
GROUPS = ("secp256r1", "x25519", "secp384r1")

VERSIONS = {"TLSv1.2": _tls.TLSv1_2, "TLSv1.3": _tls.TLSv1_3}
TICKET_LIFETIME = 86400  # seconds a server's session ticket resumes (and its key rotation)

_CERTS = ("SERVER_CERT", "CLIENT_CERT")
_KEYS = ("SERVER_KEY", "CLIENT_KEY")
_CERT_LISTS = ("SERVER_CHAIN", "CLIENT_CAS", "EMAIL_SERVER_CAS")
_DEFAULTS = {"SERVER_CERT": None, "SERVER_KEY": None, "CLIENT_CERT": None, "CLIENT_KEY": None,
             "SERVER_CHAIN": (), "CLIENT_CAS": (), "EMAIL_SERVER_CAS": (), "REVOKED": {},
             "PSK": {}, "TEST_ONLY": False}
_MISSING = object()

# The most a Certificate message may take: the firmware's outgoing TLS record (mbedTLS's
# MBEDTLS_SSL_OUT_CONTENT_LEN in MicroPython's mbedtls_config_common.h), which mbedTLS does not
# split it over. The host tools check the same (netsec_cli.x509util.OUT_RECORD).
_OUT_RECORD = 4096

# The longest pre-shared key mbedTLS takes (MBEDTLS_PSK_MAX_LEN: 48 with TLS 1.3 tickets and
# AES-256-GCM-SHA384 in the profile); it refuses a longer one in every handshake. The host tools
# check the same (netsec_cli.psk.MAX_KEY_BYTES).
_PSK_MAX = 48

# What verify_callback returns to fail a handshake: mbedTLS documents this code for "the verify
# callback failed", and it is fatal even with CERT_OPTIONAL.
_REJECTED = -0x3000


class TLSError(Exception):
    """A TLS failure a person can act on. kind names the cause for code: 'unknown_ca',
    'hostname', 'expired', 'not_yet_valid', 'revoked', 'clock_unset', 'no_client_cert',
    'no_common_cipher', 'psk', 'alert', 'closed', 'protocol', 'timeout', 'usage', 'memory',
    'credentials', 'config', 'other'."""

    def __init__(self, message, kind="other"):
        super().__init__(message)
        self.kind = kind


# --- Credentials: frozen Net_Security, replaced field by field by files in OVERRIDE_DIR --------

_creds = None  # the credentials in use
_seen = _MISSING  # the OVERRIDE_DIR listing they (or the last refused set) came from


def _listing():
    """((name, size, mtime), ...) for OVERRIDE_DIR, or None when it does not exist."""
    try:
        names = sorted(os.listdir(OVERRIDE_DIR))
    except OSError:
        return None
    listing = []
    for name in names:
        st = os.stat(OVERRIDE_DIR + "/" + name)
        listing.append((name, st[6], st[8]))
    return tuple(listing)


def _current():
    """The credentials new connections use, reloaded when OVERRIDE_DIR changed."""
    global _creds, _seen
    listing = _listing()
    if _creds is not None and listing == _seen:
        return _creds
    try:
        creds = _load(listing)
    except MemoryError:  # no verdict on the files: the next connection reads them again
        raise
    except Exception as e:  # any defect in the new files; the old set must survive it
        _seen = listing
        if not listing:
            raise TLSError("frozen Net_Security is unusable: %s" % e, "credentials")
        if _creds is not None:
            log.error("tls: refused the new credentials in %s/: %s; the previous ones stay in use"
                      % (OVERRIDE_DIR, e))
            return _creds
        log.error("tls: refused the credentials in %s/: %s; using the frozen Net_Security"
                  % (OVERRIDE_DIR, e))
        try:
            creds = _load(None)
        except Exception as e:
            raise TLSError("frozen Net_Security is unusable: %s" % e, "credentials")
    _seen = listing
    if _creds is not None:
        log.info("tls: new credentials from %s/ in use for new connections" % OVERRIDE_DIR)
    if creds["TEST_ONLY"]:
        log.warning("tls: using the public TEST credentials (TEST_ONLY): anyone can impersonate "
                    "this device; make your own with `netsec keygen` and `netsec convert`")
    _creds = creds
    return creds


def _load(listing):
    """Frozen Net_Security, then OVERRIDE_DIR/Net_Security.py, then OVERRIDE_DIR/*.der, checked."""
    creds = dict(_DEFAULTS)
    origins = {}
    _take(Net_Security.__dict__, "frozen Net_Security", creds, origins)
    files = [entry[0] for entry in listing or ()]
    if "Net_Security.py" in files:
        path = OVERRIDE_DIR + "/Net_Security.py"
        namespace = {}
        try:
            with open(path) as f:
                source = f.read()
            # Windows editors write a byte-order mark first; MicroPython's compiler would read it
            # as part of the first name.
            exec(source[1:] if source[:1] == "\ufeff" else source, namespace)
        except MemoryError:
            raise
        except Exception as e:
            raise ValueError("%s: %s: %s" % (path, type(e).__name__, e))
        _take(namespace, path, creds, origins)
    lists = {}
    for name in files:
        field = _field_of(name)
        if field is None:
            if name != "Net_Security.py":
                log.warning("tls: %s/%s ignored: expected Net_Security.py, FIELD.der or, for "
                            "lists, FIELD-anything.der (DER, not PEM)" % (OVERRIDE_DIR, name))
            continue
        with open(OVERRIDE_DIR + "/" + name, "rb") as f:
            data = f.read()
        if field in _CERT_LISTS:
            lists.setdefault(field, []).append((data, OVERRIDE_DIR + "/" + name))
        else:
            creds[field] = data
            origins[field] = OVERRIDE_DIR + "/" + name
    for field, items in lists.items():
        creds[field] = tuple(data for data, _ in items)
        origins[field] = tuple(origin for _, origin in items)
    _check(creds, origins)
    return creds


def _take(namespace, origin, creds, origins):
    if namespace.get("FORMAT") != 1:
        raise ValueError("%s has FORMAT %r, this firmware reads FORMAT 1: regenerate it with "
                         "`netsec convert`" % (origin, namespace.get("FORMAT")))
    for field in _DEFAULTS:
        value = namespace.get(field, _MISSING)
        if value is not _MISSING:
            creds[field] = value
            origins[field] = origin


def _field_of(filename):
    if not filename.endswith(".der"):
        return None
    stem = filename[:-4]
    if stem in _CERTS or stem in _KEYS:
        return stem
    for field in _CERT_LISTS:
        if stem == field or stem.startswith(field + "-"):
            return field
    return None


def _check(creds, origins):
    """Raise ValueError naming the field and its origin for anything unusable."""
    def where(field, i=None):
        origin = origins.get(field, "defaults")
        if isinstance(origin, tuple):
            return origin[i]
        return origin if i is None else "item %d of %s" % (i, origin)

    for field in _CERT_LISTS:
        if not isinstance(creds[field], (tuple, list)):
            raise ValueError("%s in %s must be a tuple of DER certificates" % (field, where(field)))
        creds[field] = tuple(creds[field])
        for i, cert in enumerate(creds[field]):
            _parse_cert(cert, "%s (%s)" % (field, where(field, i)))
    for cert_field, key_field in zip(_CERTS, _KEYS):
        cert, key = creds[cert_field], creds[key_field]
        if (cert is None) != (key is None):
            raise ValueError("%s and %s come together: one of them is missing"
                             % (cert_field, key_field))
        if cert is None:
            continue
        info = _parse_cert(cert, "%s (%s)" % (cert_field, where(cert_field)))
        if not _is_der_sequence(key):
            raise ValueError("%s (%s) is not a DER private key" % (key_field, where(key_field)))
        if not der.key_matches(info[5], key):
            raise ValueError("%s (%s) does not belong to %s (%s): copy the matching pair (a key "
                             "saved without its public part cannot be checked: re-export it with "
                             "`netsec convert`)" % (key_field, where(key_field), cert_field,
                                                    where(cert_field)))
    _check_chain(creds["SERVER_CERT"], creds["SERVER_CHAIN"], where)
    for field, sent in (("SERVER_CERT", (creds["SERVER_CERT"],) + creds["SERVER_CHAIN"]),
                        ("CLIENT_CERT", (creds["CLIENT_CERT"],))):
        # TLS 1.3's encoding, the larger: header 4, context 1, list 3; per certificate 3 + 2.
        size = 8 + sum(5 + len(cert) for cert in sent) if sent[0] else 0
        if size > _OUT_RECORD:
            raise ValueError("%s (%s) with its chain makes a TLS Certificate message of %d bytes, "
                             "over the %d this firmware can send: use an EC key and fewer "
                             "intermediate CAs" % (field, where(field), size, _OUT_RECORD))
    psk = creds["PSK"]
    if not isinstance(psk, dict) or not all(
            isinstance(k, bytes) and k and isinstance(v, bytes) and 16 <= len(v) <= _PSK_MAX
            for k, v in psk.items()):
        raise ValueError("PSK (%s) must map identities (bytes) to keys of 16 to %d bytes: "
                         "make one with `netsec keygen --psk NAME`" % (where("PSK"), _PSK_MAX))
    revoked = creds["REVOKED"]
    if not isinstance(revoked, dict) or not all(
            isinstance(k, bytes) and isinstance(v, (tuple, list)) for k, v in revoked.items()):
        raise ValueError("REVOKED (%s) must map issuer Name DER bytes to serial numbers"
                         % where("REVOKED"))


def _check_chain(leaf, chain, where):
    # Sent to clients in this order: a wrong order would fail on their side, far from here.
    if leaf is None:
        return
    child, child_name = leaf, "SERVER_CERT"
    for i, cert in enumerate(chain):
        name = "SERVER_CHAIN (%s)" % where("SERVER_CHAIN", i)
        issuer = der.certificate(child)[1]
        if bytes(issuer) != bytes(der.certificate(cert)[4]):
            raise ValueError("%s is not the issuer of %s (issued by %s): list the intermediates "
                             "leaf's issuer first" % (name, child_name, _text(issuer)))
        child, child_name = cert, name


def _is_der_sequence(data):
    if not isinstance(data, (bytes, bytearray)):
        return False
    try:
        tag, _, end = der.read(data)
    except ValueError:
        return False
    return tag == 0x30 and end == len(data)


def _parse_cert(cert, what):
    if not isinstance(cert, (bytes, bytearray)):
        raise ValueError("%s must be DER bytes, not %s" % (what, type(cert).__name__))
    if cert.startswith(b"-----BEGIN"):
        raise ValueError("%s is PEM; the device reads DER: convert it with `netsec convert` or "
                         "`openssl x509 -outform der`" % what)
    try:
        return der.certificate(cert)
    except ValueError as e:
        raise ValueError("%s is not a DER certificate: %s" % (what, e))


# --- Contexts --------------------------------------------------------------------------------

class _Context:
    # What asyncio's start_server() and open_connection() take as ssl=. They call wrap_socket()
    # for every connection, which is where changed credentials are picked up.

    def __init__(self, mode, ciphers, minimum_version):
        if minimum_version not in VERSIONS:
            raise ValueError("minimum_version must be one of %s, not %r"
                             % (", ".join(sorted(VERSIONS)), minimum_version))
        self._mode = mode
        self._minimum = VERSIONS[minimum_version]
        self._ciphers = _cipher_list(ciphers, mode == "psk")
        self._creds = _current()
        try:  # configuration errors show at start-up
            self._native = self._build(self._creds)
        except (ValueError, OSError) as e:
            if out_of_memory(e):
                raise
            raise TLSError("the credentials do not load into mbedTLS: %r" % (e,),
                           "credentials")

    def _native_context(self):
        creds = _current()
        if creds is not self._creds:
            try:
                self._native = self._build(creds)
            except Exception as e:  # e.g. mbedTLS refuses a key our checks let through
                if out_of_memory(e):  # not the credentials' fault: tried again next time
                    log.error("tls: not enough memory to load the new credentials (%s); the "
                              "previous ones stay in use until there is" % (e,))
                    return self._native
                log.error("tls: cannot use the new credentials (%s); the previous ones stay in "
                          "use" % e)
            self._creds = creds
        return self._native

    def _new(self, protocol):
        ctx = _tls.SSLContext(protocol)
        available = ctx.get_ciphers()
        missing = [name for name in self._ciphers if name not in available]
        if missing:
            raise TLSError("cipher suites not in this firmware: %s; it has: %s"
                           % (", ".join(missing), ", ".join(available)), "config")
        ctx.set_ciphers(list(self._ciphers))
        ctx.set_groups(list(GROUPS))
        ctx.minimum_version = self._minimum
        return ctx

    @property
    def mode(self):
        """How this context's connections verify the peer, for log_connection()."""
        return self._mode


class _ServerContext(_Context):
    def __init__(self, mode, ciphers, minimum_version, alpn, ticket_lifetime):
        self._alpn = alpn
        self._ticket_lifetime = ticket_lifetime
        _Context.__init__(self, mode, ciphers, minimum_version)

    def wrap_socket(self, sock, server_side=True, do_handshake_on_connect=True,
                    server_hostname=None):  # SSLContext.wrap_socket's signature, always a server
        native = self._native_context()
        return native.wrap_socket(sock, server_side=True,
                                  do_handshake_on_connect=do_handshake_on_connect)

    def _build(self, creds):
        ctx = self._new(_tls.PROTOCOL_TLS_SERVER)
        ctx.ticket_lifetime = self._ticket_lifetime
        if self._alpn:
            ctx.set_alpn_protocols(list(self._alpn))
        if self._mode == "psk":
            if not creds["PSK"]:
                raise TLSError("client_auth='psk' needs PSK, a table of identities and keys; "
                               "Net_Security has none: make one with `netsec keygen --psk NAME`",
                               "credentials")
            ctx.server_psk_keys = creds["PSK"]  # and nothing else: no certificate suites
            return ctx
        if creds["SERVER_CERT"] is None:
            raise TLSError("no server certificate: Net_Security has no SERVER_CERT/SERVER_KEY; "
                           "make them with `netsec convert` or copy SERVER_CERT.der and "
                           "SERVER_KEY.der to %s/" % OVERRIDE_DIR, "credentials")
        # The leaf and its intermediates, so that clients trusting only the root can verify.
        ctx.load_cert_chain((creds["SERVER_CERT"],) + creds["SERVER_CHAIN"], creds["SERVER_KEY"])
        if self._mode != "none":
            if not creds["CLIENT_CAS"]:
                raise TLSError("client_auth=%r needs CLIENT_CAS, the CAs (or self-signed "
                               "certificates) of the clients to accept; Net_Security has none"
                               % self._mode, "credentials")
            for ca in creds["CLIENT_CAS"]:
                ctx.load_verify_locations(ca)
            ctx.verify_mode = _tls.CERT_REQUIRED if self._mode == "required" else _tls.CERT_OPTIONAL
            ctx.verify_callback = _verifier(creds["REVOKED"], "client", "CLIENT_CAS", None)
        return ctx


# A client's last connection to each server, to resume its session with the next one (RFC 5077,
# RFC 8446 2.2): {(host name, mode, cas, psk identity): [credentials, TLS socket, subject]}. The
# session is read from the socket only when the next connection starts, because a TLS 1.3 server
# sends its ticket after the handshake: a session taken at handshake time would resume nothing.
# Sessions live in RAM only; one made under other credentials or another level is never offered.
# subject: the server certificate's, verified in the handshake that made the session; a resumed
# TLS 1.3 session has no certificate to show (mbedTLS keeps none in a TLS 1.3 session).
_sessions = {}


class _ClientContext(_Context):
    def __init__(self, hostname, mode, cas, ciphers, minimum_version, psk_identity, resume):
        self._hostname = hostname
        self._cas = cas
        self._psk_identity = psk_identity
        self._resume = resume
        self._key = (hostname, mode, cas, psk_identity)
        _Context.__init__(self, mode, ciphers, minimum_version)

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True,
                    server_hostname=None):
        # The context's host name is the one verified, whatever name the caller connected to
        # (asyncio passes the address when server_hostname is not given).
        native = self._native_context()
        last = _sessions.get(self._key) if self._resume else None
        session = last[1].session if last and last[0] is self._creds else None
        conn = native.wrap_socket(sock, do_handshake_on_connect=do_handshake_on_connect,
                                  server_hostname=self._hostname, session=session)
        if self._resume:
            if self._key not in _sessions and len(_sessions) >= 4:
                _sessions.clear()
            _sessions[self._key] = [self._creds, conn, last[2] if session else None]
        return conn

    def verified_subject(self, sock, subject):
        """The server's verified subject for sock: subject (from its certificate, noted for the
        connections that resume its session), or, for a resumed session that shows no
        certificate, the subject verified when the session was made; None if unknown."""
        entry = _sessions.get(self._key)
        if self._mode != "verified" or entry is None or entry[1] is not sock:
            return subject
        if subject is not None:
            entry[2] = subject
        return entry[2]

    def _build(self, creds):
        ctx = self._new(_tls.PROTOCOL_TLS_CLIENT)
        if self._mode == "psk":
            key = creds["PSK"].get(self._psk_identity)
            if key is None:
                raise TLSError("no key for the PSK identity %r: PSK in Net_Security has %s"
                               % (self._psk_identity, sorted(creds["PSK"]) or "none"),
                               "credentials")
            ctx.verify_mode = _tls.CERT_NONE  # the key authenticates the server
            ctx.psk_identity = self._psk_identity
            ctx.psk_key = key
            return ctx
        if creds["CLIENT_CERT"] is not None:
            ctx.load_cert_chain(creds["CLIENT_CERT"], creds["CLIENT_KEY"])
        if self._mode == "encrypted":
            ctx.verify_mode = _tls.CERT_NONE
            return ctx
        cas, trust = self._cas, "the cas given to client_context()"
        if cas is None:
            cas, trust = creds["EMAIL_SERVER_CAS"], "EMAIL_SERVER_CAS"
        if not cas:
            raise TLSError("no trust anchors to verify %s: %s is empty; add the server's CA "
                           "or pass cas=" % (self._hostname, trust), "credentials")
        for ca in cas:
            ctx.load_verify_locations(ca)
        ctx.verify_callback = _verifier(creds["REVOKED"], "server", trust, self._hostname)
        return ctx


def server_context(client_auth="none", ciphers=None, minimum_version="TLSv1.2",
                   alpn=("http/1.1",), ticket_lifetime=None):
    """The ssl= for asyncio.start_server(): SERVER_CERT/SERVER_KEY, and client certificates
    checked against CLIENT_CAS when client_auth is 'optional' or 'required'.

    'optional' lets clients without a certificate in (logged so); a certificate that
    is presented must verify as with 'required', or the handshake fails. 'psk': clients
    authenticate with a key of the PSK table instead, and no certificate is used at all.
    minimum_version: 'TLSv1.2' or 'TLSv1.3' (TLS 1.3 only). alpn: protocol names the server
    selects from the client's offer (RFC 7301). ticket_lifetime: seconds a session ticket
    resumes, 0 for none, at most 604800 (RFC 8446 4.6.1); ticket keys are made at start-up,
    kept in RAM and replaced every lifetime. Default TICKET_LIFETIME with client_auth='none',
    else 0: a resumed session cannot name the client (a TLS 1.3 ticket holds no client
    certificate, no ticket the PSK identity), so such a server issues none (ValueError if
    asked to).
    """
    if client_auth not in ("none", "optional", "required", "psk"):
        raise ValueError("client_auth must be 'none', 'optional', 'required' or 'psk', not %r"
                         % (client_auth,))
    if ticket_lifetime is None:
        ticket_lifetime = TICKET_LIFETIME if client_auth == "none" else 0
    if not isinstance(ticket_lifetime, int) or not 0 <= ticket_lifetime <= 604800:
        raise ValueError("ticket_lifetime must be seconds from 0 (no tickets) to 604800 (7 days, "
                         "RFC 8446), not %r" % (ticket_lifetime,))
    if ticket_lifetime and client_auth != "none":
        raise ValueError("client_auth=%r takes ticket_lifetime=0: a session resumed from a ticket "
                         "cannot name the client (TLS 1.3 tickets hold no client certificate, no "
                         "ticket holds the PSK identity)" % (client_auth,))
    return _ServerContext(client_auth, ciphers, minimum_version, tuple(alpn or ()),
                          ticket_lifetime)


def server_name(hostname):
    """hostname as a TLS client sends and verifies it: an IP address, or an ASCII host name.

    As written in URLs and DNS, "[::1]" is the address ::1 and "host.example." the name
    host.example (RFC 6066 section 3: HostName has no trailing dot). ValueError, naming the
    fix, for what is neither: a non-ASCII name (SNI carries A-labels, RFC 5890), an empty label,
    a scoped IPv6 address, or numbers that are not a whole IPv4 address ("127.1": RFC 1123
    section 2.1, a host name's last label is not all digits). mbedTLS itself tells an IP
    address from a name (firmware/patches/0007-*, 0008-*).
    """
    if not isinstance(hostname, str) or not hostname:
        raise ValueError("client_context needs the server's host name, not %r" % (hostname,))
    name = hostname[:-1] if hostname[-1] == "." and len(hostname) > 1 else hostname
    if name[0] == "[" and name[-1] == "]":
        name = name[1:-1]
    problem = None
    if any(not ("a" <= c <= "z" or "0" <= c <= "9" or c in "-_.:") for c in name.lower()):
        bad = [c for c in name if ord(c) > 127]
        problem = ("its A-label (xn--...) form: SNI and certificates carry no U+%04X"
                   % ord(bad[0]) if bad
                   else "no space, %, / or other character a host name or address cannot hold")
    elif ":" not in name:
        labels = name.split(".")
        if "" in labels:
            problem = "no empty label (two dots in a row, or a leading dot)"
        elif labels[-1].isdigit() and not (len(labels) == 4 and all(
                l.isdigit() and int(l) < 256 and (l == "0" or l[0] != "0") for l in labels)):
            problem = "an IPv4 address in full (four numbers 0-255, no leading zeros: 127.0.0.1)"
    if problem:
        raise ValueError("%r is neither a host name nor an IP address: give %s"
                         % (hostname, problem))
    return name


def client_context(hostname, level="verified", cas=None, ciphers=None, allow_plaintext=False,
                   minimum_version="TLSv1.2", psk_identity=None, resume=True):
    """The ssl= for asyncio.open_connection() to hostname.

    level 'verified' (default): the server's certificate must chain to cas (default
    EMAIL_SERVER_CAS) and be valid for hostname. 'encrypted': no authentication of the server,
    logged on every connection. 'plaintext': returns None (no TLS), and only when the calling
    service passes allow_plaintext=True. The host name is sent as SNI; an IP address (IPv4, or
    IPv6 with or without brackets) is verified against the certificate's IP subjectAltName and
    never sent (RFC 6066 section 3; firmware/patches/0007-*). CLIENT_CERT/CLIENT_KEY, when set,
    are offered to servers that ask for a client certificate. psk_identity (bytes): authenticate
    both sides with that identity's key from the PSK table instead of certificates (level must
    be 'verified'). minimum_version: 'TLSv1.2' or 'TLSv1.3'. resume: offer the last session
    with the same server, level and trust (the server may decline); False: full handshakes only.
    """
    if level not in ("verified", "encrypted", "plaintext"):
        raise ValueError("level must be 'verified', 'encrypted' or 'plaintext', not %r" % (level,))
    hostname = server_name(hostname)
    if level == "plaintext":
        if not allow_plaintext:
            raise ValueError("level 'plaintext' to %s: this service does not allow plaintext; "
                             "use 'verified' or 'encrypted'" % hostname)
        log.warning("tls: plaintext to %s: no encryption, no authentication" % hostname)
        return None
    if cas is not None:
        cas = tuple(cas)
        for i, ca in enumerate(cas):
            _parse_cert(ca, "cas[%d]" % i)
    if psk_identity is not None:
        if level != "verified" or cas is not None or not isinstance(psk_identity, bytes):
            raise ValueError("psk_identity (bytes) replaces certificates: it goes with "
                             "level='verified' and no cas, not %r/%r" % (level, cas))
        level = "psk"
    return _ClientContext(hostname, level, cas, ciphers, minimum_version, psk_identity, resume)


def _cipher_list(ciphers, psk):
    default = PSK_CIPHERS if psk else CIPHERS
    if ciphers is None:
        return default
    ciphers = tuple(ciphers)
    if not ciphers or not all(isinstance(c, str) for c in ciphers):
        raise ValueError("ciphers must be mbedTLS suite names such as %r" % default[0])
    # A TLS 1.2 suite authenticates by PSK or by certificate, never both. A PSK context verifies
    # no certificate, so a certificate suite in it would let any server in, logged VERIFIED;
    # a certificate context has no key for a PSK suite. (TLS 1.3 suites serve both: the
    # firmware allows a PSK context psk_dhe_ke only.)
    other = [c for c in ciphers if not c.startswith("TLS1-3-") and ("-PSK-" in c) != psk]
    if other:
        raise ValueError("%s in ciphers: a %s context takes TLS 1.3 suites and TLS 1.2 %s suites "
                         "only" % (", ".join(other), "PSK" if psk else "certificate",
                                   "PSK (-PSK-)" if psk else "non-PSK"))
    weak = [c for c in ciphers if c not in CIPHERS + PSK_CIPHERS]
    if weak:
        log.warning("tls: cipher suites outside netsec's policy allowed: " + ", ".join(weak))
    return ciphers


# --- Verification during the handshake --------------------------------------------------------

# Set by verify callbacks, read by explain(): the handshake's failure surfaces in the same
# read or write call that ran the callback, so these belong to the exception being explained
# as long as explain() is called straight away.
_rejection = None  # (kind, message) when a callback failed the handshake
_leaf = None  # (peer, subject DER, issuer DER, trust list name, host name) of the last peer


def _verifier(revoked, peer, trust, hostname):
    def verify(cert, depth):
        # cert is a memoryview into mbedTLS memory, valid only during this call. Nothing may
        # raise out of here: the exception would unwind through mbedTLS.
        global _rejection, _leaf
        try:
            _rejection = None
            serial, issuer, not_before, not_after, subject, _ = der.certificate(cert)
            problem = clock.problem()
            if problem:
                _rejection = ("clock_unset", problem)
                return _REJECTED
            kind, problem = _dates(not_before, not_after, clock.utc())
            if problem is None and revoked:
                serials = revoked.get(bytes(issuer))
                if serials and serial in serials:
                    kind, problem = "revoked", ("(serial 0x%x, issued by %s) is revoked (REVOKED "
                                                "in Net_Security)" % (serial, _text(issuer)))
            if problem is None:
                if depth == 0:
                    _leaf = (peer, bytes(subject), bytes(issuer), trust, hostname)
                return 0
            who = "%s certificate %s" % (peer, _text(subject))
            if depth:
                who = "CA certificate %s in the %s's chain" % (_text(subject), peer)
            _rejection = (kind, who + " " + problem)
        except MemoryError:
            _rejection = ("memory", "not enough memory to check the %s's certificate: free heap "
                                    "or lower the number of sessions at once" % peer)
        except BaseException as e:  # even KeyboardInterrupt: see above
            _rejection = ("other", "cannot read the %s's certificate: %r" % (peer, e))
        return _REJECTED

    return verify


def _dates(not_before, not_after, now):
    if now > not_after:
        return "expired", ("expired on %s (device time %s)"
                           % (der.time_text(not_after), der.time_text(now)))
    if now < not_before:
        return "not_yet_valid", ("is not valid before %s (device time %s)"
                                 % (der.time_text(not_before), der.time_text(now)))
    return None, None


def _text(name):
    try:
        return der.name_text(name)
    except ValueError:
        return "<unreadable name>"


# mbedTLS's certificate verification messages (raised as ValueError by MicroPython's tls).
_VERIFY_FAILURES = (
    ("not correctly signed by the trusted CA", "unknown_ca",
     "{peer} certificate {subject} (issued by {issuer}) is not signed by a CA in {trust}"),
    ("does not match with the expected CN", "hostname",
     "{peer} certificate {subject} is not valid for the host name {host!r}"),
    ("has expired", "expired",
     "{peer} certificate {subject} has expired (device time {now})"),
    ("starts in the future", "not_yet_valid",
     "{peer} certificate {subject} is not valid yet (device time {now})"),
    ("Usage does not match", "usage",
     "{peer} certificate {subject} is not issued for this use (key usage)"),
    ("unacceptable", "usage",
     "{peer} certificate {subject} uses an algorithm or key this firmware refuses "
     "(SHA-1, a small curve or a short RSA key)"),
)

_POLICY = "TLS 1.2 or 1.3, ECDHE with AES-GCM or ChaCha20-Poly1305"
_CLOSED = ("the peer closed the connection during the TLS handshake: it may accept none of this "
           "device's cipher suites (" + _POLICY + "), want a client certificate, or "
           "not trust this device's certificate")
# mbedTLS's DECODE_ERROR and ILLEGAL_PARAMETER: what a broken or hostile peer sends.
_MALFORMED = ("the peer sent a malformed or illegal TLS handshake message (a broken or hostile "
              "peer, a scanner, or to a PSK server a TLS 1.3 PSK identity not in PSK)")
_ERRORS = {
    -0x7480: ("no_client_cert", "the client sent no certificate, but this server requires one "
                                "(client_auth='required')"),
    -0x6E00: ("no_common_cipher", "handshake failed: the peer offered no cipher suite, curve, "
                                  "signature algorithm or TLS version this device accepts ("
                                  + _POLICY + "), or (TLS 1.3) a pre-shared key other than this "
                                  "device's"),
    # A PSK the other side does not have: an identity not in its table (TLS 1.2), or the same
    # identity with another key, which shows when the Finished message does not verify.
    -0x6C80: ("psk", "the client offered a PSK identity that is not in PSK (Net_Security)"),
    -0x7180: ("protocol", "a TLS record or Finished message did not verify: the peer's "
                          "pre-shared key differs from this device's, or the data was tampered "
                          "with"),
    -0x7780: ("alert", "the peer aborted the handshake with a TLS alert: it may not trust this "
                       "device's certificate, or accept none of its cipher suites"),
    -0x7A00: ("usage", "the peer's certificate is not usable here (key usage, extended key usage "
                       "or curve)"),
    -0x7280: ("closed", _CLOSED),
    -0x7880: ("closed", _CLOSED),
    errno.ECONNRESET: ("closed", _CLOSED),
    32: ("closed", _CLOSED),  # EPIPE (not in MicroPython's errno): a write after the peer left
    -0x7200: ("protocol", "the peer does not speak TLS 1.2 or 1.3 (a plain-text client on a TLS "
                          "port, or an unsupported protocol version)"),
    -0x7700: ("protocol", "the peer sent a TLS message out of turn: it does not speak TLS 1.2 or "
                          "1.3 (a plain-text client on a TLS port), or it sent one mbedTLS does "
                          "not implement (a TLS 1.3 KeyUpdate)"),
    -0x7300: ("protocol", _MALFORMED),
    -0x6600: ("protocol", _MALFORMED),
    -0x6E80: ("protocol", "the peer supports no TLS version this device accepts (TLS 1.2 or 1.3, "
                          "or 1.3 only when minimum_version='TLSv1.3')"),
    errno.ENOMEM: ("memory", "not enough memory for another TLS session: lower the session "
                             "limit or free memory"),
}


def out_of_memory(exc):
    """Whether exc says memory ran out: MemoryError, or the OSError(ENOMEM) the firmware raises
    for whatever mbedTLS could not allocate (firmware/patches/0017-*)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and bool(exc.args)
                                            and exc.args[0] == errno.ENOMEM)


def explain(exc):
    """A TLSError saying what went wrong in a handshake, for the exception it raised. Call it
    straight away in the except block (it uses what the handshake's checks noted)."""
    global _rejection, _leaf
    rejection, leaf = _rejection, _leaf
    _rejection = _leaf = None
    if isinstance(exc, TLSError):
        return exc
    if isinstance(exc, MemoryError):  # mbedTLS allocates from the MicroPython heap on boards
        return TLSError("not enough memory for the TLS handshake (MemoryError): free heap or lower "
                        "the number of sessions at once", "memory")
    if out_of_memory(exc) and "key store" in str(exc):
        return TLSError("TLS key store full (PSA key slots, MBEDTLS_PSA_KEY_SLOT_COUNT): lower "
                        "the number of sessions at once", "memory")
    if type(exc).__name__ == "TimeoutError" or (
            isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT):
        return TLSError("TLS handshake timed out: the peer did not complete it in time", "timeout")
    if isinstance(exc, OSError):
        if exc.errno == _REJECTED and rejection:
            return TLSError(rejection[1], rejection[0])
        kind, message = _ERRORS.get(exc.errno, ("other", None))
        if message:
            return TLSError(message, kind)
    if isinstance(exc, ValueError) and leaf and exc.args:
        text = str(exc.args[0])
        for marker, kind, template in _VERIFY_FAILURES:
            if marker in text:
                peer, subject, issuer, trust, host = leaf
                return TLSError(template.format(
                    peer=peer, subject=_text(subject), issuer=_text(issuer), trust=trust,
                    host=host, now=clock.now_text()), kind)
    return TLSError("unexpected %r" % (exc,))


# --- The per-connection log line ----------------------------------------------------------------

# What was checked when no verified peer certificate came: by the mode of the context.
_UNVERIFIED = {
    "encrypted": "UNVERIFIED (encrypted only, the server was not authenticated)",
    "none": "client certificate not requested (client_auth=none)",
    "optional": "no client certificate (client_auth=optional)",
    "required": "UNVERIFIED (no certificate)",
    "verified": "UNVERIFIED (no certificate)",
    None: "UNVERIFIED (log_connection got no netsec.tls context)",
}


def log_connection(conn, role, context=None):
    """Log 'ROLE TLSv1.x SUITE VERIFIED peer=SUBJECT', or what was checked instead of
    VERIFIED, for an established connection (an asyncio stream or its TLS socket) made by
    context (the netsec.tls context); return the peer's subject if it was verified, else None.
    A connection authenticated by a pre-shared key logs 'ROLE TLSv1.x SUITE VERIFIED
    psk=IDENTITY' and returns 'psk:IDENTITY'.

    Call it only once the handshake has finished, i.e. after the first successful read or
    write: earlier, the TLS socket has no cipher suite to report (OSError ENOTCONN).
    """
    sock = getattr(conn, "s", conn)
    mode = getattr(context, "mode", None)
    suite, version = sock.cipher()
    if mode == "psk":  # the firmware allows nothing but the PSK in such a context
        identity = sock.psk_identity
        try:
            identity = identity.decode()
        except UnicodeError:  # identities are bytes on the wire (RFC 4279 5.1)
            identity = repr(identity)
        log.info("%s %s %s VERIFIED psk=%s" % (role, version, suite, identity))
        return "psk:" + identity
    cert = sock.getpeercert(True)
    subject = None
    if cert:
        try:
            subject = der.name_text(der.certificate(cert)[4])
        except ValueError:
            subject = "<unreadable certificate>"
    # A certificate the peer presented was verified in all three modes: with 'optional' the
    # firmware fails the handshake when it does not verify (firmware/patches/0005-*).
    verified = cert is not None and mode in ("verified", "required", "optional")
    status = "VERIFIED" if verified else _UNVERIFIED[mode]
    if isinstance(context, _ClientContext):
        known = context.verified_subject(sock, subject if verified else None)
        if not verified and known:  # a full handshake with no certificate fails: resumed
            subject, verified, status = known, True, "VERIFIED (resumed session)"
    log.info("%s %s %s %s peer=%s" % (role, version, suite, status, subject or "none"))
    return subject if verified else None


def server_certificate():
    """The SERVER_CERT (DER) new connections present: the frozen one, or a rotated one from
    OVERRIDE_DIR."""
    return _current()["SERVER_CERT"]
