"""HTTP Basic authentication (RFC 7617) for netsec.server, against salted PBKDF2-SHA256 hashes.

    from netsec.server import BasicAuth, hash_password
    app.protect("/admin", BasicAuth({"admin": hash_password("s3cret")}))
"""
import os

from netsec.http import HTTPError


class BasicAuth:
    """HTTP Basic authentication against salted PBKDF2-SHA256 hashes (see hash_password).

    users: {"name": "pbkdf2-sha256$iterations$salt-hex$hash-hex"}. Plain passwords are never
    stored; a wrong user name costs the same hashing as a wrong password, so timing does not
    tell which names exist.
    """

    def __init__(self, users, realm="netsec"):
        iterations = "1000"
        for name, stored in users.items():
            parts = stored.split("$")
            if len(parts) != 4 or parts[0] != "pbkdf2-sha256" or not parts[1].isdigit():
                raise ValueError("password for user %r must be a hash from hash_password(), "
                                 "not the password itself" % name)
            iterations = parts[1]
        self.users = users
        self.realm = realm
        self._decoy = "pbkdf2-sha256$%s$00$00" % iterations  # checked for unknown names

    def check(self, headers, connection):
        """The user name if the request's credentials are right, else HTTPError 401."""
        value = headers.get("authorization", "")
        if value[:6].lower() == "basic ":
            cached = connection.authorized
            if cached and cached[0] == value and cached[1] is self:
                return cached[2]  # this connection proved the same credentials already
            name, password = _basic_credentials(value[6:])
            stored = self.users.get(name)
            if check_password(stored or self._decoy, password) and stored:
                connection.authorized = (value, self, name)
                return name
        raise HTTPError(401, "authentication required", False,
                        [("WWW-Authenticate", 'Basic realm="%s", charset="UTF-8"' % self.realm)])


def _basic_credentials(encoded):
    import binascii
    try:
        decoded = binascii.a2b_base64(encoded.strip().encode()).decode()
    except ValueError:
        return "", ""
    colon = decoded.find(":")
    return (decoded[:colon], decoded[colon + 1:]) if colon >= 0 else ("", "")


def _pbkdf2_sha256(password, salt, iterations):
    # PBKDF2-HMAC-SHA256 with one 32-byte block (RFC 8018), from hashlib alone: MicroPython
    # has no hmac module. Same result as CPython's hashlib.pbkdf2_hmac("sha256", ...).
    import hashlib
    key = password
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)

    def hmac(message):
        return hashlib.sha256(outer + hashlib.sha256(inner + message).digest()).digest()

    u = hmac(salt + b"\x00\x00\x00\x01")
    result = int.from_bytes(u, "big")  # one big-int XOR per round beats 32 byte XORs
    for _ in range(iterations - 1):
        u = hmac(u)
        result ^= int.from_bytes(u, "big")
    return result.to_bytes(32, "big")


def hash_password(password, iterations=1000, salt=None):
    """The string to store for a password: 'pbkdf2-sha256$iterations$salt$hash' (hex)."""
    import binascii
    salt = salt or os.urandom(16)
    digest = _pbkdf2_sha256(password.encode(), salt, iterations)
    return "pbkdf2-sha256$%d$%s$%s" % (iterations, binascii.hexlify(salt).decode(),
                                       binascii.hexlify(digest).decode())


def check_password(stored, password):
    """True if password matches a hash_password() string; constant time in the comparison."""
    import binascii
    _, iterations, salt, digest = stored.split("$")
    want = binascii.unhexlify(digest)
    got = _pbkdf2_sha256(password.encode(), binascii.unhexlify(salt), int(iterations))
    return _same(got, want)


def _same(a, b):
    # Constant-time: every byte is looked at whatever the first difference is.
    diff = len(a) ^ len(b)
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
