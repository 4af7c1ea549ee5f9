"""Certificates, keys and CRLs for the CLI tests, made directly with `cryptography`.

Independent of `netsec keygen` on purpose: the CLI is checked against certificates it did not make.
Also `run_netsec`, which runs the CLI in-process and returns (exit status, stdout, stderr).
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netsec_cli.main import main

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

_KEYS = {
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "secp256k1": lambda: ec.generate_private_key(ec.SECP256K1()),
    "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
    "rsa2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def key(kind="p256"):
    return _KEYS[kind]()


def _hash_for(signing_key, hash_algorithm):
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return None
    return hash_algorithm or hashes.SHA256()


def _builder(subject_cn, issuer_cert, private_key, not_before, not_after, days, serial=None):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer_cert.subject if issuer_cert else subject)
            .public_key(private_key.public_key())
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(not_before or NOW - DAY)
            .not_valid_after(not_after or NOW + days * DAY))


def ca(cn="Test CA", signer=None, private_key=None, not_before=None, not_after=None,
       hash_algorithm=None):
    """A CA, self-signed or (signer=(cert, key)) an intermediate: returns (cert, key)."""
    private_key = private_key or key()
    issuer_cert, issuer_key = signer or (None, private_key)
    builder = (_builder(cn, issuer_cert, private_key, not_before, not_after, 3650)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    return builder.sign(issuer_key, _hash_for(issuer_key, hash_algorithm)), private_key


def leaf(signer, hosts=("localhost",), usage=SERVER_AUTH, cn=None, private_key=None,
         not_before=None, not_after=None, hash_algorithm=None, serial=None):
    """A server (or client) certificate signed by signer=(cert, key): returns (cert, key)."""
    issuer_cert, issuer_key = signer
    private_key = private_key or key()
    cn = cn or (hosts[0] if hosts else "client")
    builder = (_builder(cn, issuer_cert, private_key, not_before, not_after, 365, serial)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True))
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if hosts:
        names = []
        for host in hosts:
            if host.startswith("DNS:"):  # a DNS name however it reads, e.g. an address spelt out
                names.append(x509.DNSName(host[4:]))
                continue
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, _hash_for(issuer_key, hash_algorithm)), private_key


def crl(signer, serials, next_update=None, issuer_name=None):
    """A CRL of serials, signed by signer=(cert, key); issuer_name overrides the name it claims."""
    issuer_cert, issuer_key = signer
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer_name or issuer_cert.subject)
               .last_update(NOW - DAY).next_update(next_update or NOW + 7 * DAY))
    for serial in serials:
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - DAY)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(issuer_key, hashes.SHA256())


def pem(obj, password=None, traditional=False):
    if isinstance(obj, (x509.Certificate, x509.CertificateRevocationList)):
        return obj.public_bytes(serialization.Encoding.PEM)
    encryption = (serialization.BestAvailableEncryption(password.encode()) if password
                  else serialization.NoEncryption())
    formats = serialization.PrivateFormat
    fmt = formats.TraditionalOpenSSL if traditional else formats.PKCS8
    return obj.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def der(obj):
    if isinstance(obj, (x509.Certificate, x509.CertificateRevocationList)):
        return obj.public_bytes(serialization.Encoding.DER)
    return obj.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write(path, *objs, **pem_options):
    """Write objects as one PEM file (bytes are written as they are); returns the path as str."""
    with open(path, "wb") as f:
        for obj in objs:
            f.write(obj if isinstance(obj, bytes) else pem(obj, **pem_options))
    return str(path)


def run_netsec(capsys, *argv):
    """Run `netsec argv...` in-process: (exit status, stdout, stderr)."""
    try:
        status = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own usage errors
        status = e.code
    out, err = capsys.readouterr()
    return status, out, err


def load_module(path):
    """The constants of a written Net_Security.py, as the device's import would see them."""
    namespace = {}
    with open(path) as f:
        exec(compile(f.read(), str(path), "exec"), namespace)
    namespace.pop("__builtins__")
    return namespace


def mode(path):
    return os.stat(path).st_mode & 0o777
