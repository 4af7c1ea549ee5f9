"""netsec convert: PEM/DER certificates, keys and CRLs -> a checked Net_Security.py module."""
import pprint
import shlex

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from . import keygen, psk, x509util
from .problems import CliError, warn

HELP = "turn PEM/DER certificates, keys and CRLs into a Net_Security.py module"
DESCRIPTION = """\
Check certificates, keys and CRLs and write them, as DER bytes, into a
Net_Security.py module (FORMAT 1) that is frozen into the firmware image.
Nothing the firmware cannot use gets through: the key must match its
certificate, the chain must lead to --ca, the certificate must be made for its
role (serverAuth/clientAuth) and valid for every --host and for today, keys
must be EC P-256/P-384/P-521 or RSA 2048..4096, CRLs must be signed by their
CA. In a bundle of CAs, those that can verify nothing today (expired, unusable
keys) are left out with a warning.

Encrypted private keys (PKCS#8 or traditional) are read with the passphrase
from $NETSEC_KEY_PASSPHRASE, or asked for on a terminal. The module holds the
keys DECRYPTED, so it is as secret as the key files. The same inputs always
give the same bytes."""
EPILOG = """\
example (files from netsec keygen):
  netsec convert --server-cert certs/server.pem --server-key certs/server-key.pem \\
      --ca certs/ca.pem --host device.local --client-ca certs/ca.pem \\
      --email-server-ca /etc/ssl/certs/ca-certificates.crt -o build/Net_Security.py"""

_FIX_FOR_KIND = {
    "cert": "pass certificates with --server-cert, --chain, --ca, --client-ca, --email-server-ca "
            "or --client-cert",
    "key": "pass private keys with --server-key or --client-key",
    "crl": "pass CRLs with --crl",
}
_NO_IDENTITY = (None, [], None)  # (leaf, chain, key) items when a role is not given
_KIND_NAME = {"cert": "a certificate", "key": "a private key", "crl": "a CRL"}
_ROLE_USAGE = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
_USAGE_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}


def add_arguments(p):
    p.add_argument("-o", "--output", metavar="FILE", default="Net_Security.py",
                   help="module to write (default: Net_Security.py); replaced if it exists")
    p.add_argument("--server-cert", metavar="FILE",
                   help="the device's server certificate; more certificates after it are its "
                   "chain, and its key may be in the same file")
    p.add_argument("--server-key", metavar="FILE", help="the server certificate's private key")
    p.add_argument("--chain", action="append", default=[], metavar="FILE",
                   help="intermediate CAs of the server certificate, any order (repeatable)")
    p.add_argument("--ca", action="append", default=[], metavar="FILE",
                   help="CA the server and client certificates must chain to (checked, not "
                   "stored; repeatable)")
    p.add_argument("--host", action="append", default=[], metavar="NAME",
                   help="DNS name or IP address the server certificate must be valid for "
                   "(repeatable)")
    p.add_argument("--client-ca", action="append", default=[], metavar="FILE",
                   help="CAs whose client certificates the device accepts (mutual TLS): "
                   "CLIENT_CAS")
    p.add_argument("--email-server-ca", action="append", default=[], metavar="FILE",
                   help="trust anchors for the SMTP relay, a bundle is fine: EMAIL_SERVER_CAS")
    p.add_argument("--client-cert", metavar="FILE",
                   help="the certificate this device presents to servers (clientAuth): "
                   "CLIENT_CERT")
    p.add_argument("--client-key", metavar="FILE", help="its private key: CLIENT_KEY")
    p.add_argument("--crl", action="append", default=[], metavar="FILE",
                   help="CRL of one of the given CAs; its serials go into REVOKED (repeatable)")
    p.add_argument("--psk", action="append", default=[], metavar="FILE",
                   help="a pre-shared key from netsec keygen --psk NAME (repeatable): PSK")
    p.add_argument("--allow-expired", action="store_true",
                   help="include expired or not yet valid certificates anyway (loudly)")


def run(args):
    conversion = Conversion(args)
    module = conversion.module()
    has_key = bool(module["SERVER_KEY"] or module["CLIENT_KEY"] or module["PSK"])
    text = render(module, header(args, module["TEST_ONLY"], has_key))
    try:
        # Secret when it holds decrypted private keys; UTF-8, as netsec inspect reads it.
        keygen.write_file(args.output, text.encode("utf-8"), has_key and not module["TEST_ONLY"])
    except OSError as e:
        raise CliError(args.output, "cannot write (%s)" % (e.strerror or e),
                       "check the path and permissions")
    print("wrote %s: %s" % (args.output, summary(module)))
    return 0


class Conversion:
    def __init__(self, args):
        self.args = args
        self.now = x509util.utcnow()
        self.passphrases = x509util.Passphrases()
        self.certs = []  # every certificate read, to recognise the public test credentials
        self.anchor_of = {}  # role -> the --ca item its chain leads to

    def module(self):
        """Every constant of the module, checked; raises CliError at the first refusal."""
        a = self.args
        self.check_options()
        anchors = self.anchors(a.ca, "--ca", "the --ca certificate")
        client_cas = self.anchors(a.client_ca, "--client-ca", "a CLIENT_CAS certificate")
        email_cas = self.anchors(a.email_server_ca, "--email-server-ca",
                                 "an EMAIL_SERVER_CAS certificate")
        server = self.server_identity(anchors) if a.server_cert else _NO_IDENTITY
        client = self.client_identity(anchors) if a.client_cert else _NO_IDENTITY
        for role, (leaf, chain, _) in (("server", server), ("client", client)):
            sent = [x509util.der(i.obj) for i in ([leaf] + chain if leaf else [])]
            problem = sent and x509util.certificate_message_problem(
                sent, "the %s certificate (%d bytes) and its %d intermediate CA(s) (%d bytes)"
                % (role, len(sent[0]), len(sent) - 1, sum(map(len, sent[1:]))))
            if problem:
                raise CliError(leaf.origin, problem, x509util.CERTIFICATE_MESSAGE_FIX)
        cas = anchors + server[1] + client_cas + email_cas
        revoked = self.revoked(self.load(a.crl, "--crl", ("crl",)), cas)
        for role, (leaf, _, _) in (("server", server), ("client", client)):
            if leaf is None:
                continue
            if leaf.obj.serial_number in revoked.get(leaf.obj.issuer.public_bytes(), ()):
                raise CliError(leaf.origin, "the %s certificate (serial %x) is revoked by a given "
                               "CRL" % (role, leaf.obj.serial_number), "make a new certificate")
        test_only = any(x509util.is_test_credential(c.obj) for c in self.certs)
        if test_only:
            warn(
                None,
                "these are the PUBLIC default test credentials (tests/certs/default): anyone can "
                "impersonate a device that uses them; the module says TEST_ONLY = True. "
                "Make your own with: netsec keygen")
        return {
            "FORMAT": 1,
            "TEST_ONLY": test_only,
            "SERVER_CERT": _der(server[0]),
            "SERVER_CHAIN": tuple(_der(i) for i in server[1]),
            "SERVER_KEY": x509util.key_der(server[2].obj) if server[2] else None,
            # Not sent to peers: what the device's self-check (netsec.selftest) and `make run`
            # verify the server certificate against.
            "SERVER_CA": _der(self.anchor_of.get("server")),
            "CLIENT_CAS": tuple(_der(i) for i in client_cas),
            "EMAIL_SERVER_CAS": tuple(_der(i) for i in email_cas),
            "CLIENT_CERT": _der(client[0]),
            "CLIENT_KEY": x509util.key_der(client[2].obj) if client[2] else None,
            "REVOKED": revoked,
            "PSK": self.psks(),
            "INFO": info(server, self.anchor_of.get("server"), client, client_cas, email_cas, revoked, cas),
        }

    def check_options(self):
        a = self.args
        dependent = (("--server-key", a.server_key, "--server-cert", a.server_cert),
                     ("--chain", a.chain, "--server-cert", a.server_cert),
                     ("--host", a.host, "--server-cert", a.server_cert),
                     ("--client-key", a.client_key, "--client-cert", a.client_cert))
        for option, value, needs, needed in dependent:
            if value and not needed:
                raise CliError(option, "is given without %s" % needs, "give %s too" % needs)
        if not (a.server_cert or a.client_cert or a.client_ca or a.email_server_ca or a.psk):
            raise CliError(None, "nothing to convert",
                           "give --server-cert/--server-key/--ca, --client-ca, --email-server-ca, "
                           "--client-cert or --psk")
        if (a.server_cert or a.client_cert) and not a.ca:
            raise CliError("--ca", "is needed to check the certificate chain",
                           "give the CA that issued the server/client certificate with --ca")

    def psks(self):
        """PSK: {identity: key} from the --psk files; an identity given twice is refused."""
        table = {}
        for path in self.args.psk:
            identity, key = psk.read(path)
            if identity in table:
                raise CliError(path, "identity %s is given twice" % identity.decode(),
                               "give each identity once (rename one with netsec keygen --psk)")
            if psk.guessable(key):
                warn(path, "the key " + psk.GUESSABLE % psk.guessable(key))
            table[identity] = key
        return table

    def server_identity(self, anchors):
        """The server certificate file may also hold its chain and its key."""
        a = self.args
        items = self.load([a.server_cert], "--server-cert", ("cert", "key"))
        certs = [i for i in items if i.kind == "cert"]
        if not certs:
            raise CliError(a.server_cert, "holds no certificate",
                           "give the server certificate with --server-cert")
        keys = [i for i in items if i.kind == "key"] + self.load(
            [a.server_key] if a.server_key else [], "--server-key", ("key",))
        pool = certs[1:] + self.load(a.chain, "--chain", ("cert",))
        return self.identity("server", certs[0], keys, pool, anchors)

    def client_identity(self, anchors):
        """One certificate (Net_Security has no client chain); its key there or in --client-key."""
        a = self.args
        items = self.load([a.client_cert], "--client-cert", ("cert", "key"))
        certs = [i for i in items if i.kind == "cert"]
        if len(certs) != 1:
            raise CliError(
                a.client_cert,
                "holds %d certificates; CLIENT_CERT is one (there is no client chain)" % len(certs),
                "give the client certificate alone, issued directly by --ca")
        keys = [i for i in items if i.kind == "key"] + self.load(
            [a.client_key] if a.client_key else [], "--client-key", ("key",))
        return self.identity("client", certs[0], keys, [], anchors)

    def load(self, paths, option, kinds):
        items = []
        for path in paths:
            for item in x509util.read_items(path, self.passphrases):
                if item.kind not in kinds:
                    raise CliError(
                        item.origin,
                        "holds %s, which %s does not take" % (_KIND_NAME[item.kind], option),
                        _FIX_FOR_KIND[item.kind])
                if item.kind == "cert":
                    self.certs.append(item)
                items.append(item)
        return items

    def check_dates(self, item, what):
        cert = item.obj
        problem = x509util.validity_problem(cert, self.now)
        if problem and not self.args.allow_expired:
            raise CliError(
                item.origin, "%s (%s) is %s" % (what, cert.subject.rfc4514_string(), problem),
                "renew it (netsec keygen), check this computer's clock, "
                "or pass --allow-expired to include it anyway")
        if problem:
            warn(
                item.origin,
                "!!! %s (%s) is %s: included ONLY because of --allow-expired; TLS peers "
                "and the device will refuse it until it is replaced !!!" %
                (what, cert.subject.rfc4514_string(), problem))
        elif x509util.expires_soon(cert, self.now):
            warn(
                item.origin, "%s (%s) expires on %s, within 30 days: renew it soon" %
                (what, cert.subject.rfc4514_string(), x509util.iso(cert.not_valid_after_utc)))
        lifespan = x509util.lifespan_problem(cert)
        if lifespan:
            warn(item.origin, "%s (%s) %s" % (what, cert.subject.rfc4514_string(), lifespan))

    def anchors(self, paths, option, what):
        """Trust anchors, each file one CA or a bundle. A bundle (such as the system's) may hold CAs
        that can verify nothing today: those are left out with a warning, not refused."""
        kept = []
        for path in paths:
            items = self.load([path], option, ("cert",))
            for item in items:
                try:
                    kept.append(self.anchor(item, what))
                except CliError as e:
                    if len(items) == 1:
                        raise
                    warn(e.where, "left out of the bundle: %s" % e.what)
        return _unique(kept)

    def anchor(self, item, what):
        """A trust anchor: a CA certificate (or a self-signed one the peer presents as is)."""
        cert = item.obj
        if not (x509util.is_ca(cert) or x509util.is_self_signed(cert)):
            raise CliError(
                item.origin, "%s (%s) is not a CA certificate (no basicConstraints CA:TRUE)" %
                (what, cert.subject.rfc4514_string()), "give the CA certificate that issued it")
        x509util.check_key(x509util.public_key(cert), item.origin, what)
        self.check_dates(item, what)
        return item

    def identity(self, role, leaf, keys, pool, anchors):
        """Check a certificate + key the device presents; return (leaf, chain, key) items."""
        cert, what = leaf.obj, "the %s certificate" % role
        if not keys:
            raise CliError("--%s-key" % role, "no private key for %s" % what,
                           "give it with --%s-key (or in the certificate file)" % role)
        if len(keys) > 1:
            origins = ", ".join(k.origin for k in keys)
            raise CliError(keys[1].origin, "%d private keys for %s (%s)"
                           % (len(keys), what, origins), "give exactly one key")
        key = keys[0]
        if x509util.is_ca(cert):
            raise CliError(leaf.origin, "%s is a CA certificate" % what,
                           "give the %s certificate that the CA issued" % role)
        x509util.check_key(x509util.public_key(cert), leaf.origin, what)
        x509util.check_key(key.obj, key.origin, "the %s key" % role)
        if not x509util.same_key(key.obj, cert):
            raise CliError(key.origin, "the key does not match %s (%s)" % (what, leaf.origin),
                           "give the key that was made together with that certificate")
        self.check_usage(role, leaf)
        if role == "server":
            self.check_hosts(leaf)
        chain = self.chain(role, leaf, pool, anchors)
        for item, name in [(leaf, what)] + [(i, "the intermediate CA") for i in chain]:
            self.check_dates(item, name)
            x509util.check_key(x509util.public_key(item.obj), item.origin, name)
        return leaf, chain, key

    def check_usage(self, role, leaf):
        usages = x509util.ext_key_usages(leaf.obj)  # None: no EKU extension, any use is allowed
        wanted = _ROLE_USAGE[role]
        any_usage = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
        allowed = usages is None or wanted in usages or any_usage in usages
        if not allowed:
            have = ", ".join(_USAGE_NAMES.get(u, u.dotted_string) for u in usages) or "nothing"
            raise CliError(
                leaf.origin, "the %s certificate lacks the %s extended key usage (it allows %s)" %
                (role, _USAGE_NAMES[wanted], have),
                "use a certificate made for a %s (netsec keygen --%s)" %
                (role, "host" if role == "server" else "client"))
        try:
            usage = leaf.obj.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if not usage.digital_signature:
            raise CliError(
                leaf.origin, "the %s certificate's keyUsage lacks digitalSignature, which the "
                "firmware's ECDHE key exchanges need" % role,
                "have it reissued with digitalSignature")

    def check_hosts(self, leaf):
        names = x509util.sans(leaf.obj)
        for host in self.args.host:
            if not x509util.valid_for_host(leaf.obj, host):
                raise CliError(
                    leaf.origin, "the server certificate is not valid for %s (it names: %s)" %
                    (host, ", ".join(names) or "no subjectAltName"),
                    "make one that lists it: netsec keygen --host %s" % host)
        if not names:
            warn(leaf.origin,
                 "the server certificate has no subjectAltName; browsers and curl will refuse it")

    def chain(self, role, leaf, pool, anchors):
        """Order the pool into the path from the leaf to an anchor; refuse if there is none."""
        chain, current, unused = [], leaf, list(pool)
        while True:
            # First, so a signature the firmware rejects is named as such, not as a broken chain.
            x509util.check_signature_hash(
                current.obj, current.origin,
                "the intermediate CA" if chain else "the %s certificate" % role)
            anchor = next((a for a in anchors if x509util.issued_by(current.obj, a.obj)), None)
            if anchor is not None:
                self.anchor_of[role] = anchor
                for item in unused:
                    if x509util.der(item.obj) != x509util.der(anchor.obj):
                        warn(
                            item.origin, "%s is not on the path to the CA; left out" %
                            item.obj.subject.rfc4514_string())
                return chain
            issuer = next((i for i in unused if x509util.issued_by(current.obj, i.obj)), None)
            if issuer is None:
                raise self.no_path(role, current, anchors)
            if not x509util.is_ca(issuer.obj):
                raise CliError(
                    issuer.origin, "%s signed %s but is not a CA certificate" %
                    (issuer.obj.subject.rfc4514_string(), current.obj.subject.rfc4514_string()),
                    "give the real intermediate CA certificates")
            unused.remove(issuer)
            chain.append(issuer)
            current = issuer

    def no_path(self, role, current, anchors):
        issuer = current.obj.issuer.rfc4514_string()
        same_name = [a for a in anchors if a.obj.subject == current.obj.issuer]
        if same_name:
            return CliError(
                current.origin, "%s names %s as its issuer, but the --ca of that name (%s) "
                "did not sign it" %
                (current.obj.subject.rfc4514_string(), issuer, same_name[0].origin),
                "give the CA certificate that really issued it (was the CA made again?)")
        fix = (
            "pass the intermediate CA certificates with --chain (or after the certificate), "
            "or give the right --ca"
            if role == "server" else
            "give the CA that issued it directly with --ca (Net_Security has no client chain)")
        cas = "; ".join(a.obj.subject.rfc4514_string() for a in anchors)
        return CliError(current.origin, "the chain does not lead to the given CA: %s was issued by "
                        "%s, which is neither --ca (%s) nor in the chain"
                        % (current.obj.subject.rfc4514_string(), issuer, cas), fix)

    def revoked(self, crls, cas):
        """REVOKED: {issuer Name DER: (serial, ...)} from CRLs, each checked against its CA."""
        serials = {}
        for item in crls:
            crl, name = item.obj, item.obj.issuer.rfc4514_string()
            issuers = [c for c in cas if c.obj.subject == crl.issuer]
            if not issuers:
                raise CliError(item.origin,
                               "the CRL's issuer (%s) is not among the given CAs" % name,
                               "pass that CA with --ca, --client-ca or --email-server-ca")
            if not any(crl.is_signature_valid(c.obj.public_key()) for c in issuers):
                raise CliError(item.origin,
                               "the CRL says it is from %s, but that CA did not sign it" % name,
                               "fetch the CRL again from the CA that issued it")
            if crl.next_update_utc is not None and crl.next_update_utc < self.now:
                warn(
                    item.origin, "the CRL is past its nextUpdate (%s): fetch a fresh one from %s" %
                    (x509util.iso(crl.next_update_utc), name))
            issuer_serials = serials.setdefault(crl.issuer.public_bytes(), set())
            issuer_serials.update(r.serial_number for r in crl)
        return {issuer: tuple(sorted(s)) for issuer, s in sorted(serials.items())}


def _unique(items):
    seen, unique = set(), []
    for item in items:
        der = x509util.der(item.obj)
        if der not in seen:
            seen.add(der)
            unique.append(item)
    return unique


def info(server, server_ca, client, client_cas, email_cas, revoked, cas):
    """INFO: the facts logs and people want, so the device need not parse certificates for them.
    A single certificate gets describe()'s dict; a list field a tuple of brief() tuples, which the
    firmware keeps in flash however many CAs a bundle holds."""
    result = {}
    if server[0]:
        result["SERVER_CERT"] = x509util.describe(server[0].obj)
        result["SERVER_CHAIN"] = tuple(x509util.brief(i.obj) for i in server[1])
        result["SERVER_CA"] = x509util.brief(server_ca.obj)
    if client[0]:
        result["CLIENT_CERT"] = x509util.describe(client[0].obj)
    result["CLIENT_CAS"] = tuple(x509util.brief(i.obj) for i in client_cas)
    result["EMAIL_SERVER_CAS"] = tuple(x509util.brief(i.obj) for i in email_cas)
    if revoked:  # issuer names in REVOKED's order (REVOKED's keys are DER names)
        names = {c.obj.subject.public_bytes(): c.obj.subject.rfc4514_string() for c in cas}
        result["REVOKED"] = [names[issuer] for issuer in revoked]
    return result


def _der(item):
    return x509util.der(item.obj) if item is not None else None


def summary(module):
    facts = module["INFO"]
    parts = ["SERVER_CERT %s" % facts["SERVER_CERT"]["subject"]] if "SERVER_CERT" in facts else []
    parts += [
        "%d SERVER_CHAIN" % len(module["SERVER_CHAIN"]),
        "%d CLIENT_CAS" % len(module["CLIENT_CAS"]),
        "%d EMAIL_SERVER_CAS" % len(module["EMAIL_SERVER_CAS"])
    ]
    if "CLIENT_CERT" in facts:
        parts.append("CLIENT_CERT %s" % facts["CLIENT_CERT"]["subject"])
    parts.append("REVOKED from %d CA(s)" % len(module["REVOKED"]))
    if module["PSK"]:
        parts.append("PSK %s" % ", ".join(i.decode() for i in module["PSK"]))
    return ", ".join(parts) + (" (TEST_ONLY)" if module["TEST_ONLY"] else "")


# ---- writing the module: plain constants, bytes literals wrapped at 100 columns ----

_WIDTH = 100


def header(args, test_only, has_key):
    # One option and its value per piece, so the command wraps between options, never inside one.
    pieces = []
    for word in ["netsec"] + [shlex.quote(w) for w in args.argv]:
        if word.startswith("-") or not pieces:
            pieces.append(word)
        else:
            pieces[-1] += " " + word
    made = [""]
    for piece in pieces:
        if made[-1] and len(made[-1]) + len(piece) > _WIDTH - 16:
            made.append("")
        made[-1] += (" " if made[-1] else "") + piece
    lines = [
        "Net_Security: TLS credentials for netsec (FORMAT 1), frozen into the firmware image.",
        "Made with: " + made[0]
    ] + ["  " + m for m in made[1:]]
    lines += [
        "Written by netsec convert (same inputs, same bytes). Read it with: netsec inspect FILE",
        "SERVER_CA: the --ca the server certificate chains to; never sent, the self-check trusts it.",
        "INFO: a dict of facts for SERVER_CERT and CLIENT_CERT; for SERVER_CA, SERVER_CHAIN,",
        "CLIENT_CAS and EMAIL_SERVER_CAS one (%s) tuple per certificate, in order" %
        ", ".join(x509util.BRIEF_FIELDS),
        "(constants, so they stay in flash; netsec inspect shows the rest, read from the DER)."
    ]
    if test_only:
        lines += [
            "PUBLIC TEST CREDENTIALS, NOT SECRET: their keys are published in tests/certs/default,",
            "so anyone can impersonate a device using them. Remade by tests/certs/default/make.sh.",
            "For your own: netsec keygen, then netsec convert (README: 'Your own certificates')."
        ]
    elif has_key:
        lines.append(
            "Private keys are stored here DECRYPTED: keep this file as secret as the key files.")
    return "".join("# %s\n" % line for line in lines)


def render(module, head):
    out = [head]
    for name, value in module.items():
        if name == "INFO":
            out.append("INFO = %s\n" % pprint.pformat(value, width=_WIDTH - 7, sort_dicts=True))
        elif name == "REVOKED":
            out.append("REVOKED = {%s}\n" %
                       "".join("\n    %s: (%s),\n" %
                               (_bytes(issuer, 4).strip(), " ".join("0x%x," % s for s in serials))
                               for issuer, serials in value.items()))
        elif name == "PSK":
            out.append("PSK = {%s}\n" % "".join("\n    %r: (\n%s\n    ),\n" % (identity, _bytes(key, 8))
                                                for identity, key in value.items()))
        elif isinstance(value, tuple):
            out.append("%s = (%s)\n" % (name, "".join("\n    %s,\n" % _bytes(v, 4).strip()
                                                      for v in value)))
        elif isinstance(value, bytes):
            out.append("%s = (\n%s\n)\n" % (name, _bytes(value, 4)))
        else:
            out.append("%s = %r\n" % (name, value))
    return "".join(out)


def _bytes(data, indent):
    """A bytes literal split into adjacent b"..." pieces of at most _WIDTH columns."""
    pieces, line = [], ""
    room = _WIDTH - indent - 3
    for byte in data:
        char = chr(byte) if 32 <= byte < 127 and byte not in (34, 92) else "\\x%02x" % byte
        if len(line) + len(char) > room:
            pieces.append(line)
            line = ""
        line += char
    pieces.append(line)
    return "\n".join(" " * indent + 'b"%s"' % p for p in pieces)
