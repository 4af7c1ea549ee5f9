"""netsec keygen: a CA plus server and client identities, as PEM files."""
import csv
import datetime
import io
import ipaddress
import os
import re
import secrets
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import psk, x509util
from .problems import CliError, warn

HELP = "make a CA and server/client certificates with their keys (PEM files)"
DESCRIPTION = """\
Make a CA and, signed by it, a server identity for the device (--host), client
identities for mutual TLS (--client), or one server identity per device of a
fleet (--fleet). Every identity gets its own key. Defaults work on a
microcontroller and in browsers: EC P-256 keys, SHA-256, subjectAltName with
every --host, serverAuth/clientAuth key usage, random 128-bit serials,
validity from now (CA 10 years, server 365 days as Mozilla's intermediate
TLS profile requires, client 2 years).

Files written to DIR: ca.pem, ca-key.pem (unless --ca is given), server.pem,
server-key.pem (--host), NAME.pem, NAME-key.pem (--client NAME),
DEVICE/server.pem, DEVICE/server-key.pem (--fleet), NAME.psk (--psk NAME: a
pre-shared key of 32 random bytes for identity NAME, for netsec convert --psk). Keys are unencrypted
PKCS#8 PEM with mode 0600; keep ca-key.pem offline. Existing files are never
overwritten without --force."""
EPILOG = """\
examples:
  netsec keygen -o certs --host device.local --host 192.168.1.20
  netsec keygen -o certs --ca certs/ca.pem --ca-key certs/ca-key.pem --client alice
  netsec keygen -o fleet --fleet devices.csv --key-type rsa-2048

devices.csv: one device per row, its name (the directory and CN) then its DNS
names and IP addresses, e.g. "sensor-01,sensor-01.local,192.168.1.51". A first
row starting "name" is a header; rows starting with # are skipped."""

KEY_TYPES = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa-3072": lambda: rsa.generate_private_key(65537, 3072),
}
# The usual pairing of signature hash and key: P-384 with SHA-384, P-521 with SHA-512.
_HASH_FOR_CURVE = {"secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}
_DNS_NAME = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")
# Peers whose clocks run a little slow still accept a certificate made a moment ago.
_BACKDATE = datetime.timedelta(hours=1)


def add_arguments(p):
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="directory for the files")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="make a server identity valid for this DNS name or IP address "
                   "(repeat for more)")
    p.add_argument("--client", action="append", default=[], metavar="NAME",
                   help="make a client identity (clientAuth) with CN=NAME as NAME.pem (repeatable)")
    p.add_argument("--fleet", metavar="CSV", help="make one server identity per device in CSV")
    p.add_argument("--psk", action="append", default=[], metavar="NAME",
                   help="make a pre-shared key for identity NAME as NAME.psk (repeatable)")
    p.add_argument("--key-type", choices=sorted(KEY_TYPES), default="ec-p256",
                   help="key type for every new key (default: ec-p256)")
    p.add_argument("--ca", metavar="PEM", help="sign with this existing CA instead of making one")
    p.add_argument("--ca-key", metavar="PEM",
                   help="the existing CA's private key (with --ca); if encrypted, the passphrase "
                   "comes from $%s or a prompt" % x509util.PASSPHRASE_ENV)
    p.add_argument("--cn", metavar="NAME",
                   help="server certificate's common name (default: first --host)")
    p.add_argument("--ca-cn", metavar="NAME",
                   help="new CA's common name (default: 'netsec CA' + key id)")
    p.add_argument("--org", metavar="NAME", help="organization (O) in every new subject")
    p.add_argument("--country", metavar="CC",
                   help="two-letter country code (C) in every new subject")
    p.add_argument("--days", type=int, default=365, metavar="DAYS",
                   help="validity of server certificates (default: 365; more than %d fails "
                   "Mozilla's intermediate TLS profile, with a warning)"
                   % x509util.SERVER_LIFESPAN_DAYS)
    p.add_argument("--client-days", type=int, default=730, metavar="DAYS",
                   help="validity of client certificates (default: 730)")
    p.add_argument("--ca-days", type=int, default=3650, metavar="DAYS",
                   help="validity of a new CA (default: 3650)")
    p.add_argument("--force", action="store_true", help="overwrite existing files")


def run(args):
    now = x509util.utcnow()
    hosts = [parse_host(h, "--host") for h in args.host]
    reserved = ("ca", "ca-key", "server", "server-key")
    clients = [_file_name(n, "--client", reserved) for n in args.client]
    fleet = read_fleet(args.fleet) if args.fleet else []
    psks = [_file_name(n, "--psk") for n in args.psk]
    for name in psks:  # convert reads no longer identity: refuse now, not after writing the key
        if len(name) > psk.MAX_IDENTITY:
            raise CliError("--psk", "'%s...' has %d characters; a PSK identity has at most %d"
                           % (name[:16], len(name), psk.MAX_IDENTITY), "give a shorter name")
    if not (hosts or clients or fleet or psks):
        raise CliError(None, "nothing to make",
                       "give --host NAME (a server), --client NAME, --fleet CSV or --psk NAME")
    if args.country is not None and not re.match(r"^[A-Z]{2}$", args.country):
        raise CliError("--country", "'%s' is not a two-letter country code" % args.country,
                       "use e.g. DE or US")
    for option, days in (("--days", args.days), ("--client-days", args.client_days),
                         ("--ca-days", args.ca_days)):
        if days < 1:
            raise CliError(option, "must be at least 1 day", "give a positive number of days")
    out = Path(args.output)
    files = [(out / (name + ".psk"), psk.make(name).encode(), True) for name in psks]
    if not (hosts or clients or fleet):
        return _write(files, args)
    new_key = KEY_TYPES[args.key_type]
    if args.ca or args.ca_key:
        ca_cert, ca_key = load_ca(args.ca, args.ca_key, now)
    else:
        ca_key = new_key()
        ca_cert = make_ca(ca_key, args, now)
        files += [(out / "ca.pem", cert_pem(ca_cert), False),
                  (out / "ca-key.pem", key_pem(ca_key), True)]
    signer = (ca_cert, ca_key)
    if hosts:
        files += identity(out, "server", signer, new_key(), args.cn or _host_text(hosts[0]), hosts,
                          args, now)
    for name in clients:
        files += identity(out, name, signer, new_key(), name, [], args, now)
    for name, device_hosts in fleet:
        files += identity(out / name, "server", signer, new_key(), name, device_hosts, args, now)
    if (hosts or fleet) and args.days > x509util.SERVER_LIFESPAN_DAYS:
        warn("--days", "server certificates valid for %d days: Mozilla's intermediate TLS "
             "profile allows at most %d (scanners such as sslyze flag it), browsers and Apple "
             "platforms refuse publicly trusted ones valid more than 398 days"
             % (args.days, x509util.SERVER_LIFESPAN_DAYS))
    if now + datetime.timedelta(days=max(args.days, args.client_days)) > ca_cert.not_valid_after_utc:
        warn(args.ca, "the CA expires on %s, before the certificates it signs now"
             % x509util.iso(ca_cert.not_valid_after_utc))
    _write(files, args)
    if hosts:
        host_options = " ".join("--host " + _host_text(h) for h in hosts)
        ca = args.ca or out / "ca.pem"
        print("next: netsec convert --server-cert %s --server-key %s --ca %s %s -o Net_Security.py"
              % (out / "server.pem", out / "server-key.pem", ca, host_options))
    return 0


def _write(files, args):
    write_files(files, args.force)
    for path, _, secret in files:
        print("wrote %s%s" % (path, " (secret, mode 0600)" if secret else ""))
    return 0


def parse_host(text, where):
    """A --host value as a subjectAltName entry: an IP address or a (possibly wildcard) DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.lower().rstrip(".")
    if not _DNS_NAME.match(name):
        raise CliError(where, "'%s' is not a DNS name or IP address" % text,
                       "use e.g. device.local or 192.168.1.20 (international names: xn-- form)")
    return x509.DNSName(name)


def _host_text(general_name):
    return str(general_name.value)


def _file_name(name, where, reserved=()):
    if not _FILE_NAME.match(name) or name in reserved:
        why = " (reserved)" if name in reserved else ""
        raise CliError(where, "'%s' cannot name files%s" % (name, why),
                       "use letters, digits, '.', '_' and '-', and not ca or server")
    return name


def read_fleet(path):
    """[(device name, [subjectAltName entries])] from a CSV of names and addresses."""
    devices, seen = [], set()
    try:
        with open(path, "rb") as f:
            # Excel writes a byte-order mark ("CSV UTF-8") or UTF-16 ("Unicode text").
            rows = csv.reader(io.StringIO(x509util.decode_text(path, f.read()), newline=""))
            for row in rows:
                cells = [c.strip() for c in row]
                where = "%s line %d" % (path, rows.line_num)
                if not cells or not cells[0] or cells[0].startswith("#"):
                    continue
                if rows.line_num == 1 and cells[0].lower() == "name":
                    continue
                name, hosts = _file_name(cells[0], where), [c for c in cells[1:] if c]
                if name in seen:
                    raise CliError(where, "device '%s' is listed twice" % name,
                                   "give every device its own name")
                if not hosts:
                    raise CliError(where, "device '%s' has no DNS name or IP address" % name,
                                   "add them after the name: %s,%s.local,10.0.0.9" % (name, name))
                seen.add(name)
                devices.append((name, [parse_host(h, where) for h in hosts]))
    except OSError as e:
        raise CliError(path, "cannot read the file (%s)" % (e.strerror or e), "check the path")
    except csv.Error as e:
        raise CliError(path, "not a readable CSV file (%s)" % e, "save it as UTF-8 CSV")
    if not devices:
        raise CliError(path, "lists no devices", "add one row per device: name,dns-name,ip-address")
    return devices


def load_ca(cert_path, key_path, now):
    if not (cert_path and key_path):
        raise CliError("--ca" if key_path else "--ca-key", "--ca and --ca-key go together",
                       "give both the CA certificate and its private key")
    passphrases = x509util.Passphrases()
    certs = [i for i in x509util.read_items(cert_path, passphrases) if i.kind == "cert"]
    keys = [i for i in x509util.read_items(key_path, passphrases) if i.kind == "key"]
    if len(certs) != 1:
        raise CliError(cert_path, "holds %d certificates, not one CA" % len(certs),
                       "give the CA certificate alone")
    if len(keys) != 1:
        raise CliError(key_path, "holds %d private keys, not one" % len(keys),
                       "give the CA's private key alone")
    cert, key = certs[0].obj, keys[0].obj
    if not x509util.is_ca(cert):
        raise CliError(cert_path, "is not a CA certificate (no basicConstraints CA:TRUE)",
                       "give your CA certificate")
    if not x509util.same_key(key, cert):
        raise CliError(key_path, "this key does not belong to %s" % cert_path,
                       "give the CA's own private key")
    x509util.check_key(key, key_path, "the CA key")
    problem = x509util.validity_problem(cert, now)
    if problem:
        raise CliError(cert_path, "the CA is %s" % problem, "make a new CA (leave out --ca)")
    return cert, key


def subject(cn, args):
    # Most general first (C, O, CN), as CAs write them: shown as "CN=.., O=.., C=..".
    attributes = []
    if args.country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, args.country))
    if args.org:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, args.org))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attributes)


def _signature_hash(key):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return _HASH_FOR_CURVE.get(key.curve.name, hashes.SHA256)()
    return hashes.SHA256()


def _serial():
    return secrets.randbelow(2**128 - 1) + 1


def _key_usage(**wanted):
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{name: wanted.get(name, False) for name in names})


def _builder(subject_name, issuer_name, key, now, days):
    return (x509.CertificateBuilder()
            .subject_name(subject_name).issuer_name(issuer_name).public_key(key.public_key())
            .serial_number(_serial())
            .not_valid_before(now - _BACKDATE).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False))


def make_ca(key, args, now):
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    name = subject(args.ca_cn or "netsec CA " + ski.digest[:4].hex(), args)
    return (_builder(name, name, key, now, args.ca_days)
            # pathlen 0: this CA signs devices and people, never other CAs.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True),
                           critical=True)
            .sign(key, _signature_hash(key)))


def identity(directory, stem, signer, key, cn, hosts, args, now):
    """A leaf for `key`, signed by the CA: a server's if it has hosts, else a client's."""
    ca_cert, ca_key = signer
    try:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if hosts else ExtendedKeyUsageOID.CLIENT_AUTH
    days = args.days if hosts else args.client_days
    builder = (_builder(subject(cn, args), ca_cert.subject, key, now, days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               # digitalSignature only: the firmware offers ECDHE key exchanges alone.
               .add_extension(_key_usage(digital_signature=True), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(aki, critical=False))
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(hosts), critical=False)
    cert = builder.sign(ca_key, _signature_hash(ca_key))
    return [(directory / (stem + ".pem"), cert_pem(cert), False),
            (directory / (stem + "-key.pem"), key_pem(key), True)]


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_files(files, force):
    """Write every file, or none: refuse before writing anything if one exists and not --force."""
    existing = [str(path) for path, _, _ in files if path.exists()]
    if existing and not force:
        more = " (and %d more)" % (len(existing) - 1) if len(existing) > 1 else ""
        raise CliError(existing[0], "already exists" + more,
                       "choose another --output directory, or pass --force to replace the files")
    for path, data, secret in files:
        write_file(path, data, secret)


def write_file(path, data, secret):
    """Write bytes to path (making its directory); a secret file gets mode 0600, even if it
    replaces one that had another mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        if secret:
            os.fchmod(f.fileno(), 0o600)  # a replaced file would keep its old mode otherwise
        f.write(data)
