"""Reading PEM/DER files and describing certificates and keys, with what the firmware can use."""
import base64
import binascii
import datetime
import getpass
import ipaddress
import os
import re
import sys
from collections import namedtuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .problems import CliError

PASSPHRASE_ENV = "NETSEC_KEY_PASSPHRASE"

# What the firmware's mbedTLS profile (firmware/mbedtls/netsec_profile.h) can use.
CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
RSA_BITS = (2048, 4096)
SUPPORTED = "EC P-256, P-384 or P-521, or RSA 2048..4096"
SIGNATURE_HASHES = ("sha256", "sha384", "sha512")

# The public default test credentials (tests/certs/default): recognised by their CA's fingerprint,
# or by the marker every one of their subjects carries.
TEST_CA_SHA256 = "4a8199e6b54f333875658934456554aff8dffe7c96df4da5aa8b8211c14ec88c"
TEST_MARKER = "PUBLIC TEST CREDENTIALS"

# One thing found in an input file; `origin` names the file (and the PEM block) for messages.
Item = namedtuple("Item", "kind obj origin")

_BEGIN = re.compile(r"^-----BEGIN ([A-Z0-9 ]+)-----\s*$")
_END = re.compile(r"^-----END ([A-Z0-9 ]+)-----\s*$")
_BEGIN_ANY = re.compile(r"BEGIN [A-Z]")  # also with dashes a word processor made
_KEY_LABELS = ("PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY",
               "DSA PRIVATE KEY")
_REFUSED_LABELS = {  # label -> (what it is, what to do instead)
    "CERTIFICATE REQUEST": ("a certificate request, not a certificate",
                            "have your CA sign it (or make a signed one with netsec keygen)"),
    "NEW CERTIFICATE REQUEST": ("a certificate request, not a certificate",
                                "have your CA sign it (or make a signed one with netsec keygen)"),
    "TRUSTED CERTIFICATE": ("an OpenSSL 'TRUSTED CERTIFICATE'",
                            "write it as a plain one: openssl x509 -in FILE -out plain.pem"),
    "PUBLIC KEY": ("a public key", "give the private key (or the certificate)"),
    "OPENSSH PRIVATE KEY": ("an OpenSSH key",
                            "convert it to PKCS#8 PEM: ssh-keygen -p -m PKCS8 -f FILE"),
}


# The firmware's outgoing TLS record holds 4096 bytes of content (MBEDTLS_SSL_OUT_CONTENT_LEN in
# MicroPython's extmod/mbedtls/mbedtls_config_common.h, kept by firmware/mbedtls/netsec_profile.h)
# and mbedTLS never splits its own Certificate message over records: a larger one fails every
# handshake (MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL) and the peer sees the connection drop.
OUT_RECORD = 4096


def certificate_message_size(ders):
    """Bytes of the Certificate handshake message carrying these DER certificates (leaf first),
    in the larger of its encodings: TLS 1.3's (RFC 8446 section 4.4.2: handshake header 4,
    empty request context 1, list length 3, then per certificate length 3, DER, extensions 2)
    is TLS 1.2's (RFC 5246 section 7.4.2: 4 + 3 + per certificate 3 + DER) plus 1 + 2 a
    certificate."""
    return 4 + 1 + 3 + sum(3 + len(d) + 2 for d in ders)


def certificate_message_problem(ders, what):
    """None if the certificates fit in one outgoing record, else a sentence saying by how much."""
    size = certificate_message_size(ders)
    if size <= OUT_RECORD:
        return None
    return ("%s make a TLS Certificate message of %d bytes, over the %d bytes the firmware can "
            "send in one (its outgoing TLS record; mbedTLS does not split the message): every "
            "handshake would fail" % (what, size, OUT_RECORD))


CERTIFICATE_MESSAGE_FIX = ("use an EC key (a P-256 certificate is about 500 bytes, an RSA-4096 one "
                           "about 1,400) and fewer intermediate CAs")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(when):
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Passphrases:
    """Passphrases for encrypted keys: from $NETSEC_KEY_PASSPHRASE, else a prompt on a terminal."""
    def get(self, origin):
        value = os.environ.get(PASSPHRASE_ENV)
        if value is not None:
            return value.encode()
        if sys.stdin is not None and sys.stdin.isatty():
            return getpass.getpass("Passphrase for %s: " % origin).encode()
        raise CliError(
            origin, "the private key is encrypted",
            "set %s to its passphrase (or run in a terminal to be asked)" % PASSPHRASE_ENV)


def read_items(path, passphrases):
    """Every certificate, private key and CRL in a PEM (one or many blocks) or DER file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CliError(path, "cannot read the file (%s)" % (e.strerror or e),
                       "check the path and its permissions")
    if not data.strip():
        raise CliError(path, "the file is empty", "give the PEM or DER file itself")
    encoding, body = text_encoding(data)
    if _der_size(data) == len(data):
        # A DER file is one SEQUENCE; checked first, since a name inside it may read "BEGIN C".
        return [_read_der(path, data, passphrases)]
    if encoding or _BEGIN_ANY.search(data.decode("latin-1")):
        # Undecodable bytes become U+FFFD: refused inside a PEM block, harmless outside one.
        return _read_pem(path, body.decode(encoding or "utf-8", "replace"), passphrases)
    return [_read_der(path, data, passphrases)]


def _der_size(data):
    """The size a DER SEQUENCE at the start of data says it has (X.690 8.1.3), else None."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    if data[1] < 0x80:
        return 2 + data[1]
    octets = data[1] & 0x7F
    if not 1 <= octets <= 4 or len(data) < 2 + octets:
        return None
    return 2 + octets + int.from_bytes(data[2:2 + octets], "big")


# Byte-order marks editors write before text (Notepad: UTF-8; PowerShell 5 `>`: UTF-16 LE).
# UTF-32 first: its LE mark starts with UTF-16 LE's.
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def text_encoding(data):
    """(encoding, data without its byte-order mark) for text as editors write it: the encoding
    a byte-order mark names, or UTF-16 told by the NUL after (LE) or before (BE) each ASCII
    character; (None, data) for anything else (UTF-8/ASCII text, or binary such as DER)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, data[len(bom):]
    head = data[:64]
    if len(head) >= 8 and not any(head[1::2]) and all(head[0::2]):
        return "utf-16-le", data
    if len(head) >= 8 and not any(head[0::2]) and all(head[1::2]):
        return "utf-16-be", data
    return None, data


def decode_text(path, data):
    """The text of a file written by any common editor (see text_encoding; UTF-8 otherwise);
    CliError naming the encoding and the fix when it does not decode."""
    encoding, body = text_encoding(data)
    encoding = encoding or "utf-8"
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as e:
        offset = len(data) - len(body) + e.start
        raise CliError(path, "is not %s text (byte 0x%02x at offset %d)"
                       % (encoding.upper(), data[offset], offset),
                       "save it again as UTF-8 (in Notepad: Save As, Encoding UTF-8)")


def _read_pem(path, text, passphrases):
    items, block, number = [], None, 0
    for lineno, line in enumerate(text.splitlines(), 1):
        # Stray indentation (a PEM pasted from a YAML file, a mail or a web page) is not content,
        # nor a byte-order mark starting a line (Notepad files joined by `type a b > bundle`).
        line = line.lstrip("\ufeff").strip()
        bad = next((c for c in line if ord(c) > 126 or (ord(c) < 32 and c != "\t")), None)
        if bad is not None and (block or _BEGIN_ANY.search(line)):
            raise CliError("%s line %d" % (path, lineno),
                           "has the character U+%04X (%r), which PEM does not allow"
                           % (ord(bad), bad),
                           "copy the file itself rather than text pasted through an editor or "
                           "word processor (they turn '-' into dashes and spaces into no-break "
                           "spaces)")
        begin, end = _BEGIN.match(line), _END.match(line)
        if begin:
            if block:
                raise _truncated(path, number, block, "line %d starts another block" % lineno)
            number += 1
            block = (begin.group(1), lineno, [line])
        elif block:
            block[2].append(line)
            if end:
                if end.group(1) != block[0]:
                    raise CliError(
                        path, "block %d (%s, line %d) ends with '%s' at line %d" %
                        (number, block[0], block[1], line.strip(), lineno),
                        "the file is damaged; copy it again")
                item = _pem_block(path, number, block, passphrases)
                if item:
                    items.append(item)
                block = None
    if block:
        raise _truncated(path, number, block, "the file ends")
    if not number and "-----BEGIN " in text:
        # The armour is there but never on a line of its own: line breaks lost or escaped.
        raise CliError(path, "has a -----BEGIN line that is not on a line of its own (its line "
                       "breaks were lost, or written as \\n as in JSON or a string literal)",
                       "write the PEM with real line breaks (jq -r, or printf '%b')")
    if not items:
        raise CliError(path, "no certificate, private key or CRL in the PEM file",
                       "give the file that holds them")
    return items


def _truncated(path, number, block, why):
    return CliError(
        path, "block %d (%s, line %d) has no END line before %s: the file is truncated" %
        (number, block[0], block[1], why), "copy the whole file again")


def _pem_block(path, number, block, passphrases):
    label, lineno, lines = block
    origin = "%s block %d (line %d)" % (path, number, lineno)
    if label == "EC PARAMETERS":  # `openssl ecparam -genkey` writes these before the key
        return None
    if label in _REFUSED_LABELS:
        what, fix = _REFUSED_LABELS[label]
        raise CliError(origin, "is " + what, fix)
    pem = ("\n".join(lines) + "\n").encode()
    if label in _KEY_LABELS:
        return Item("key", _load_key(pem, serialization.load_pem_private_key, origin, passphrases),
                    origin)
    body = "".join(l for l in lines[1:-1] if ":" not in l)
    try:
        der = base64.b64decode("".join(body.split()), validate=True)
    except binascii.Error:
        raise CliError(origin, "the %s block is not valid base64" % label,
                       "the file is damaged; copy it again")
    try:
        if label in ("CERTIFICATE", "X509 CERTIFICATE"):
            return Item("cert", parsed_cert(x509.load_der_x509_certificate(der)), origin)
        if label == "X509 CRL":
            return Item("crl", x509.load_der_x509_crl(der), origin)
    except ValueError as e:
        raise CliError(origin, "the %s block is damaged or truncated (%s)" % (label, e),
                       "copy the whole file again")
    raise CliError(origin, "holds a '%s', not a certificate, private key or CRL" % label,
                   "give PEM/DER certificates, private keys or CRLs")


def parsed_cert(cert):
    # cryptography parses some fields lazily; touch them now so damage is reported at load time.
    cert.extensions, cert.subject, cert.issuer, cert.not_valid_after_utc
    return cert


def _read_der(path, data, passphrases):
    for kind, load in (("cert", x509.load_der_x509_certificate), ("crl", x509.load_der_x509_crl)):
        try:
            obj = load(data)
            return Item(kind, parsed_cert(obj) if kind == "cert" else obj, path)
        except ValueError:
            pass
    try:  # is it a DER private key at all? (an encrypted one raises TypeError)
        serialization.load_der_private_key(data, None)
    except TypeError:
        pass
    except (ValueError, UnsupportedAlgorithm):
        raise CliError(
            path, "neither PEM (no -----BEGIN line) nor a DER certificate, private key "
            "or CRL; it may be truncated",
            "give the PEM or DER file (for .p12/.pfx: openssl pkcs12 -nodes -in FILE)")
    return Item("key", _load_key(data, serialization.load_der_private_key, path, passphrases), path)


def _load_key(data, load, origin, passphrases):
    try:
        return load(data, None)
    except TypeError:  # encrypted: ask for the passphrase
        pass
    except UnsupportedAlgorithm as e:
        raise CliError(origin, "the private key's type is unknown (%s)" % e,
                       "use %s keys" % SUPPORTED)
    except ValueError as e:
        raise CliError(origin, "the private key is damaged or truncated (%s)" % e,
                       "copy the whole file again")
    try:
        return load(data, passphrases.get(origin))
    except (ValueError, TypeError):
        raise CliError(origin, "cannot decrypt the private key: wrong passphrase",
                       "set %s to the key's passphrase" % PASSPHRASE_ENV)


def key_name(key):
    """'EC P-256', 'RSA 2048', 'Ed25519' for a public or private key."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return "EC " + CURVES.get(key.curve.name, key.curve.name)
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return "RSA %d" % key.key_size
    if isinstance(key, (dsa.DSAPublicKey, dsa.DSAPrivateKey)):
        return "DSA %d" % key.key_size
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return "Ed25519"
    if isinstance(key, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return "Ed448"
    return type(key).__name__


def public_key(cert):
    try:
        return cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None


def cert_key_name(cert):
    key = public_key(cert)
    if key is None:
        return "unknown (%s)" % cert.public_key_algorithm_oid.dotted_string
    return key_name(key)


def key_supported(key):
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return key.curve.name in CURVES
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return RSA_BITS[0] <= key.key_size <= RSA_BITS[1]
    return False


def check_key(key, origin, what):
    """Refuse a key (or a certificate's key, key=None) that the firmware cannot use."""
    if key is None or not key_supported(key):
        name = key_name(key) if key is not None else "an unknown key type"
        raise CliError(origin, "%s has %s, which the firmware's TLS cannot use" % (what, name),
                       "use %s (netsec keygen makes EC P-256 by default)" % SUPPORTED)


def check_signature_hash(cert, origin, what):
    """Refuse certificates signed with a hash the firmware's mbedTLS rejects (SHA-1, MD5, ...)."""
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    name = algorithm.name if algorithm is not None else "EdDSA or an unknown algorithm"
    if name not in SIGNATURE_HASHES:
        raise CliError(origin,
                       "%s is signed with %s, which the firmware's TLS rejects" % (what, name),
                       "have it reissued with SHA-256 (or SHA-384/512) and an RSA or EC key")


def same_key(private_key, cert):
    pub = public_key(cert)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pub is not None and private_key.public_key().public_bytes(*fmt) == pub.public_bytes(*fmt)


def issued_by(cert, issuer):
    """True when `issuer` signed `cert` (names match and the signature verifies)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False


def is_self_signed(cert):
    return issued_by(cert, cert)


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def sha256(cert):
    return cert.fingerprint(hashes.SHA256()).hex()


def is_test_credential(cert):
    names = [
        a.value for n in (cert.subject, cert.issuer)
        for a in n.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    ]
    return sha256(cert) == TEST_CA_SHA256 or any(TEST_MARKER in str(v) for v in names)


def sans(cert):
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return ["DNS:" + n for n in ext.get_values_for_type(x509.DNSName)] + \
           ["IP:" + str(a) for a in ext.get_values_for_type(x509.IPAddress)]


def ext_key_usages(cert):
    """The EKU OIDs, or None when the certificate has no EKU extension (= any use)."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def valid_for_host(cert, host):
    """Does the certificate's subjectAltName cover `host` (a DNS name, or an IP address)?"""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for name in sans(cert):
        kind, value = name.split(":", 1)
        if address is not None:
            if kind == "IP" and ipaddress.ip_address(value) == address:
                return True
        elif kind == "DNS" and _dns_match(value.lower(), host.lower().rstrip(".")):
            return True
    return False


def _dns_match(pattern, host):
    if pattern.startswith("*."):  # a wildcard covers exactly one leftmost label
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def describe(cert, now=None):
    """The facts a person (and the INFO constant) wants about a certificate."""
    info = {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "sans": sans(cert),
        "key": cert_key_name(cert),
        "sha256": sha256(cert),
    }
    if now is not None:
        info["serial"] = "%x" % cert.serial_number
        info["days_left"] = (cert.not_valid_after_utc - now).days
    return info


# INFO's entry for each certificate of a list field (SERVER_CHAIN, CLIENT_CAS, EMAIL_SERVER_CAS):
# a tuple of strings, which MicroPython freezes into flash as a constant. A dict per certificate
# would be built in RAM at import (~33 KB of heap for a 140-CA bundle on the 64-bit unix image).
BRIEF_FIELDS = ("subject", "not_after", "sha256")


def brief(cert):
    """describe()'s BRIEF_FIELDS of a certificate, as a tuple in that order."""
    facts = describe(cert)
    return tuple(facts[field] for field in BRIEF_FIELDS)


def validity_problem(cert, now):
    """'expired on ...' / 'not valid until ...' / None."""
    if cert.not_valid_after_utc < now:
        return "expired on %s" % iso(cert.not_valid_after_utc)
    if cert.not_valid_before_utc > now:
        return "not valid until %s" % iso(cert.not_valid_before_utc)
    return None


# Mozilla's "intermediate" TLS profile lets a server certificate live at most 366 days (sslyze
# --mozilla_config=intermediate checks it). Browsers and Apple platforms refuse publicly trusted
# server certificates valid more than 398 days, Apple platforms any valid more than 825 days.
SERVER_LIFESPAN_DAYS = 366


def lifespan_problem(cert):
    """A warning when a server certificate (not a CA; serverAuth or no EKU) is valid for longer
    than SERVER_LIFESPAN_DAYS, else None."""
    usages = ext_key_usages(cert)
    if is_ca(cert) or (usages is not None and ExtendedKeyUsageOID.SERVER_AUTH not in usages):
        return None
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc) / datetime.timedelta(days=1)
    if days <= SERVER_LIFESPAN_DAYS:
        return None
    return ("is a server certificate valid for %d days: Mozilla's intermediate TLS profile allows "
            "at most %d (scanners such as sslyze flag it), browsers and Apple platforms refuse "
            "publicly trusted ones valid more than 398 days: reissue it with `netsec keygen` "
            "(default 365 days)" % (days, SERVER_LIFESPAN_DAYS))


def expires_soon(cert, now, days=30):
    return now <= cert.not_valid_after_utc < now + datetime.timedelta(days=days)


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def key_der(key):
    """PKCS#8 DER, unencrypted: what mbedTLS parses on the device."""
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
