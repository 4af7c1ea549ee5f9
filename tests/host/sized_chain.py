"""A server chain whose TLS Certificate message has an exact size, for the tests of the limit
the firmware can send (netsec_cli.x509util.OUT_RECORD).

RSA CAs (signatures of a fixed size) and fixed serial numbers make every size deterministic;
the leaf carries a private, non-critical padding extension sized to hit the target."""
from cryptography import x509
from cryptography.hazmat.primitives import hashes

import certfactory as cf

# The firmware's outgoing TLS record: MBEDTLS_SSL_OUT_CONTENT_LEN in MicroPython 1.25's
# extmod/mbedtls/mbedtls_config_common.h.
OUT_RECORD = 4096

PADDING = x509.ObjectIdentifier("1.3.6.1.4.1.99999.13.10")  # private arc: ignored by peers


def _ca(cn, signer, key, serial):
    issuer_cert, issuer_key = signer or (None, key)
    builder = cf._builder(cn, issuer_cert, key, None, None, 3650, serial).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _leaf(issuer, key, host, padding):
    value = b"\x04\x82" + len(padding).to_bytes(2, "big") + padding  # an OCTET STRING
    builder = (cf._builder(host, issuer[0], key, None, None, 365, 1000)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([cf.SERVER_AUTH]), critical=False)
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
               .add_extension(x509.UnrecognizedExtension(PADDING, value), critical=False))
    return builder.sign(issuer[1], hashes.SHA256())


def message_size(ders):
    """The TLS 1.3 Certificate message (RFC 8446 section 4.4.2) for these DER certificates, the
    larger encoding: header 4, empty context 1, list length 3, per certificate 3 + DER + 2."""
    return 4 + 1 + 3 + sum(3 + len(d) + 2 for d in ders)


def chain(size, intermediates=2, host="localhost"):
    """{"root": (cert, key), "chain": [intermediate certs, leaf's issuer first],
    "leaf": (cert, key)} with message_size([leaf] + chain) == size."""
    root = _ca("Sized Root CA", None, cf.key("rsa2048"), 1)
    issuers, signer = [], root
    for i in range(intermediates):
        signer = _ca("Sized Intermediate CA %d" % (i + 1), signer, cf.key("rsa2048"), 10 + i)
        issuers.insert(0, signer[0])
    leaf_key, padding = cf.key("p256"), 256
    for _ in range(10):
        leaf = _leaf(signer, leaf_key, host, b"\x00" * padding)
        ders = [cf.der(c) for c in [leaf] + issuers]
        missing = size - message_size(ders)
        if not missing:
            return {"root": root, "chain": issuers, "leaf": (leaf, leaf_key)}
        padding += missing
        assert padding >= 256, "size %d is too small for this chain" % size
    raise AssertionError("no padding gives a Certificate message of %d bytes" % size)
