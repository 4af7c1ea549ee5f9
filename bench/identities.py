"""The benchmark's server identities: an EC P-256 and an RSA-2048 CA + localhost server, made
the same on every run.

Instruction counts repeat exactly only if every byte the guest handles does: so the keys come
from fixed seeds, the dates and serials are fixed, and ECDSA signatures are deterministic
(RFC 6979). These are public benchmark credentials: never use them for anything else.
"""
import datetime
import ipaddress
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2049, 12, 31, tzinfo=datetime.timezone.utc)  # UTCTime's last year
HOSTNAME = "localhost"
_ORGANIZATION = "netsec PUBLIC BENCHMARK CREDENTIALS"


class Identity:
    """A server certificate and key (DER) and the CA certificate (DER) that issued it."""

    def __init__(self, name, ca_der, cert_der, key_der):
        self.name = name
        self.ca_der = ca_der
        self.cert_der = cert_der
        self.key_der = key_der


def _ec_key(seed):
    # Any integer below the group order is a valid P-256 private key.
    return ec.derive_private_key(random.Random(seed).getrandbits(255), ec.SECP256R1())


def _is_probable_prime(n, rng):
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):  # Miller-Rabin rounds
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng, bits, e):
    while True:
        # Top two bits set, so that two such primes make a modulus of exactly 2*bits bits.
        n = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if (n - 1) % e and _is_probable_prime(n, rng):
            return n


def _rsa_key(seed, bits=2048, e=65537):
    # cryptography cannot derive an RSA key from a seed: pick the primes here, from a seeded
    # generator, and let cryptography check and load the result.
    rng = random.Random(seed)
    p = _prime(rng, bits // 2, e)
    q = _prime(rng, bits // 2, e)
    while q == p:
        q = _prime(rng, bits // 2, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q), rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key()


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION)])


def _sign(builder, issuer_key):
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        return builder.sign(issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
    return builder.sign(issuer_key, hashes.SHA256())


def _identity(name, ca_key, server_key):
    ca_name = _name("netsec BENCHMARK CA (%s)" % name)
    ca = _sign(x509.CertificateBuilder()
               .subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(1)
               .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=False, content_commitment=False, key_encipherment=False,
                   data_encipherment=False, key_agreement=False, key_cert_sign=True,
                   crl_sign=True, encipher_only=False, decipher_only=False), critical=True),
               ca_key)
    server = _sign(x509.CertificateBuilder()
                   .subject_name(_name(HOSTNAME)).issuer_name(ca_name)
                   .public_key(server_key.public_key()).serial_number(2)
                   .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.DNSName(HOSTNAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                                  critical=False), ca_key)
    key_der = server_key.private_bytes(serialization.Encoding.DER,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    return Identity(name, ca.public_bytes(serialization.Encoding.DER),
                    server.public_bytes(serialization.Encoding.DER), key_der)


def ec_p256():
    return _identity("EC P-256", _ec_key(1), _ec_key(2))


def rsa_2048():
    return _identity("RSA-2048", _rsa_key(3), _rsa_key(4))
