"""Pre-shared keys (external PSK, RFC 4279 / RFC 8446 4.2.11): the NAME.psk files `netsec keygen
--psk NAME` writes and `netsec convert --psk FILE` reads, and the fingerprint people see.

A .psk file is one line "IDENTITY:HEXKEY" (the identity is printable ASCII without ':'), mode
0600: the key is as secret as a private key."""
import hashlib
import re
import secrets

from . import x509util
from .problems import CliError

KEY_BYTES = 32  # 256 bits: as strong as the strongest suite it protects
MIN_KEY_BYTES = 16  # the firmware refuses shorter keys
MAX_KEY_BYTES = 48  # and longer ones: mbedTLS's MBEDTLS_PSK_MAX_LEN in the profile (netsec.tls)
MAX_IDENTITY = 128  # characters: this file format's limit (RFC 4279 allows 2^16 - 1 bytes)
_IDENTITY = re.compile(r"^[\x21-\x39\x3b-\x7e]{1,%d}$" % MAX_IDENTITY)  # printable, no ':'


def make(identity):
    """The text of a new .psk file: identity and KEY_BYTES random bytes."""
    return "%s:%s\n" % (identity, secrets.token_hex(KEY_BYTES))


def read(path):
    """(identity bytes, key bytes) of a .psk file; CliError naming the file and the fix."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CliError(path, "cannot read the PSK file (%s)" % (e.strerror or e),
                       "give a file written by netsec keygen --psk NAME")
    # Saved again by an editor (a byte-order mark, CRLF, UTF-16), it is the same key.
    text = x509util.decode_text(path, data).strip()
    identity, _, hexkey = text.partition(":")
    try:
        key = bytes.fromhex(hexkey)
    except ValueError:
        key = b""
    if not _IDENTITY.match(identity) or not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES \
            or "\n" in text:
        raise CliError(path, "is not a PSK file: expected one line IDENTITY:HEXKEY with a key of "
                       "%d to %d bytes (the firmware's limits)" % (MIN_KEY_BYTES, MAX_KEY_BYTES),
                       "make one with netsec keygen --psk NAME")
    return identity.encode(), key


def problems(table):
    """What the firmware refuses in a PSK table {identity bytes: key bytes} (netsec.tls checks
    the same), one line each."""
    found = []
    for identity, key in sorted(table.items()):
        if not identity:
            found.append("PSK has an empty identity, which the firmware refuses")
        if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
            found.append("PSK %s has a %d-bit key; the firmware takes %d to %d bits"
                         % (identity.decode("ascii", "backslashreplace"), 8 * len(key),
                            8 * MIN_KEY_BYTES, 8 * MAX_KEY_BYTES))
    return found


# A key a person chose (a passphrase in hex, one byte repeated) can be guessed: whoever records
# one handshake can test guesses against it offline (RFC 9257: external PSKs need high entropy).
GUESSABLE = ("looks chosen by a person, not random (%s): anyone who records one handshake can "
             "test guesses against it offline; make a random one with netsec keygen --psk NAME")


def guessable(key):
    """Why key looks chosen by a person, or None. 16 random bytes are all printable ASCII with
    a probability of about 1e-7."""
    if len(set(key)) == 1:
        return "one byte repeated"
    if all(0x20 <= b < 0x7f for b in key):
        return "printable text"
    return None


def fingerprint(key):
    """What identifies a key for people without revealing it: SHA-256 of the key, 16 hex digits."""
    return hashlib.sha256(b"netsec psk fingerprint\0" + key).hexdigest()[:16]
