"""netsec inspect: what a Net_Security.py module (or a set of PEM/DER files) holds, for a person."""
import ast
import json

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import psk, x509util
from .problems import CliError

HELP = "show the certificates, keys and revoked serials in a Net_Security.py or PEM/DER files"
DESCRIPTION = """\
Show, for a person, each certificate's subject, subjectAltNames, issuer,
validity (and days left), key type and SHA-256 fingerprint; which certificate
each private key belongs to; pre-shared key identities with a fingerprint
(never the key); the revoked serials; and warnings (expired or
expiring within 30 days, keys the firmware cannot use, keys that match no
certificate, the public test credentials). --json prints the same for
machines.

A Net_Security.py is read as data, never run: only its plain constants are
evaluated. Certificate details come from the DER itself, not from the module's
INFO, a summary for the device: a dict of facts for SERVER_CERT and
CLIENT_CERT; for SERVER_CA, SERVER_CHAIN, CLIENT_CAS and EMAIL_SERVER_CAS one
(%s) tuple per certificate, in order, which the
firmware keeps in flash.""" % ", ".join(x509util.BRIEF_FIELDS)
EPILOG = """\
examples:
  netsec inspect build/Net_Security.py
  netsec inspect certs/server.pem certs/server-key.pem certs/ca.pem --json"""

_SINGLE = ("SERVER_CERT", "SERVER_CA", "CLIENT_CERT")
_MANY = ("SERVER_CHAIN", "CLIENT_CAS", "EMAIL_SERVER_CAS")
_KEYS = {"SERVER_KEY": "SERVER_CERT", "CLIENT_KEY": "CLIENT_CERT"}


def add_arguments(p):
    p.add_argument("files", nargs="+", metavar="FILE", help="one Net_Security.py, or PEM/DER files")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args):
    now = x509util.utcnow()
    modules = [f for f in args.files if f.endswith(".py")]
    if modules and len(args.files) > 1:
        raise CliError(modules[0], "a module is inspected on its own",
                       "give one Net_Security.py, or only PEM/DER files")
    report = from_module(modules[0], now) if modules else from_files(args.files, now)
    print(json.dumps(report, indent=2) if args.json else text(report))
    return 0


def read_module(path):
    """The module's top-level constants, evaluated as literals (a module never runs on the host)."""
    try:
        with open(path, "rb") as f:
            tree = ast.parse(x509util.decode_text(path, f.read()), path)
    except OSError as e:
        raise CliError(path, "cannot read the file (%s)" % (e.strerror or e), "check the path")
    except (SyntaxError, ValueError) as e:
        raise CliError(path, "not a readable Python module (%s)" % e,
                       "give a Net_Security.py written by netsec convert")
    constants = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and len(node.targets) == 1:
            try:
                constants[target.id] = ast.literal_eval(node.value)
            except ValueError:
                raise CliError("%s line %d" % (path, node.lineno),
                               "%s is not a plain constant" % target.id,
                               "give a Net_Security.py written by netsec convert")
    return constants


def from_module(path, now):
    constants = read_module(path)
    report = _report(path, constants.get("FORMAT"), constants.get("TEST_ONLY"))
    if report["format"] != 1:
        report["warnings"].append("FORMAT is %r; this netsec knows FORMAT 1 (the firmware refuses "
                                  "others)" % report["format"])
    certs = {}
    for name in _SINGLE:
        if constants.get(name) is not None:
            certs[name] = _cert(constants[name], path, name)
    for name in _MANY:
        for i, der in enumerate(constants.get(name) or ()):
            certs["%s[%d]" % (name, i)] = _cert(der, path, "%s[%d]" % (name, i))
    for name, cert in certs.items():
        report["certificates"].append(_described(name, cert, now, report["warnings"]))
    for key_name, cert_name in _KEYS.items():
        if constants.get(key_name) is None:
            if cert_name in certs:
                report["warnings"].append("%s is set but %s is None" % (cert_name, key_name))
            continue
        try:
            key = serialization.load_der_private_key(constants[key_name], None)
        except (ValueError, TypeError) as e:
            raise CliError(path, "%s is not an unencrypted DER private key (%s)" % (key_name, e),
                           "make the module again with netsec convert")
        belongs = cert_name in certs and x509util.same_key(key, certs[cert_name])
        matches = cert_name if belongs else None
        report["keys"].append(_key(key_name, key, matches, report["warnings"]))
        if matches is None:
            report["warnings"].append("%s does not match %s" % (key_name, cert_name))
    for problem in sent_too_big(constants):
        report["warnings"].append(problem)
    table = constants.get("PSK") or {}
    if not isinstance(table, dict) or not all(
            isinstance(k, bytes) and isinstance(v, bytes) for k, v in table.items()):
        raise CliError(path, "PSK is not a dict of bytes identities to bytes keys",
                       "make the module again with netsec convert")
    for identity, key in sorted(table.items()):  # never the key itself
        report["psk"].append({"identity": identity.decode("ascii", "backslashreplace"),
                              "fingerprint": psk.fingerprint(key), "bits": 8 * len(key)})
    report["warnings"].extend(psk.problems(table))
    report["warnings"].extend("PSK %s: the key %s" % (identity.decode("ascii", "backslashreplace"),
                                                      psk.GUESSABLE % psk.guessable(key))
                              for identity, key in sorted(table.items()) if psk.guessable(key))
    revoked = constants.get("REVOKED") or {}
    if not isinstance(revoked, dict):
        raise CliError(path, "REVOKED is a %s, not a dict" % type(revoked).__name__,
                       "make the module again with netsec convert")
    info = constants.get("INFO") or {}
    if not isinstance(info, dict):
        raise CliError(path, "INFO is a %s, not a dict" % type(info).__name__,
                       "make the module again with netsec convert")
    issuer_names = info.get("REVOKED", [])
    by_subject = {c.subject.public_bytes(): c.subject.rfc4514_string() for c in certs.values()}
    for i, (issuer, serials) in enumerate(sorted(revoked.items())):
        fallback = issuer_names[i] if i < len(issuer_names) else "unknown issuer"
        report["revoked"].append({
            "issuer": by_subject.get(issuer, fallback),
            "serials": ["%x" % s for s in serials]
        })
    if report["test_only"] or any(x509util.is_test_credential(c) for c in certs.values()):
        report["warnings"].append(_TEST_WARNING)
    return report


def sent_too_big(constants):
    """What the device could not send of a module's constants (x509util.OUT_RECORD)."""
    sent = {"SERVER_CERT": [constants.get("SERVER_CERT")]
            + list(constants.get("SERVER_CHAIN") or ()),
            "CLIENT_CERT": [constants.get("CLIENT_CERT")]}
    problems = []
    for name, ders in sent.items():
        if ders[0]:
            what = name + (" with SERVER_CHAIN" if len(ders) > 1 else "")
            problem = x509util.certificate_message_problem(ders, what)
            if problem:
                problems.append(problem)
    return problems


def from_files(paths, now):
    report = _report(paths, None, None)
    items = [i for p in paths for i in x509util.read_items(p, x509util.Passphrases())]
    certs = [i for i in items if i.kind == "cert"]
    for item in certs:
        report["certificates"].append(_described(item.origin, item.obj, now, report["warnings"]))
    for item in (i for i in items if i.kind == "key"):
        match = next((c.origin for c in certs if x509util.same_key(item.obj, c.obj)), None)
        report["keys"].append(_key(item.origin, item.obj, match, report["warnings"]))
        if certs and match is None:
            report["warnings"].append("%s matches none of the certificates given" % item.origin)
    for item in (i for i in items if i.kind == "crl"):
        crl = item.obj
        entry = {
            "issuer": crl.issuer.rfc4514_string(),
            "serials": ["%x" % r.serial_number for r in crl],
            "next_update": x509util.iso(crl.next_update_utc) if crl.next_update_utc else None
        }
        report["revoked"].append(entry)
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            report["warnings"].append("%s: the CRL is past its nextUpdate (%s)" %
                                      (item.origin, entry["next_update"]))
        issuers = [c.obj for c in certs if c.obj.subject == crl.issuer]
        if issuers and not any(crl.is_signature_valid(c.public_key()) for c in issuers):
            report["warnings"].append("%s: the CRL is not signed by %s given here" %
                                      (item.origin, entry["issuer"]))
    if any(x509util.is_test_credential(c.obj) for c in certs):
        report["warnings"].append(_TEST_WARNING)
    return report


def _report(source, fmt, test_only):
    return {"source": source, "format": fmt, "test_only": test_only,
            "certificates": [], "keys": [], "psk": [], "revoked": [], "warnings": []}


_TEST_WARNING = (
    "these are the PUBLIC default test credentials: anyone can impersonate a device that uses them "
    "(make your own with netsec keygen)")


def _cert(der, path, name):
    if not isinstance(der, bytes):
        raise CliError(path, "%s is a %s, not DER bytes" % (name, type(der).__name__),
                       "make the module again with netsec convert")
    try:
        return x509util.parsed_cert(x509.load_der_x509_certificate(der))
    except ValueError as e:
        raise CliError(path, "%s is not a DER certificate (%s)" % (name, e),
                       "make the module again with netsec convert")


def _described(name, cert, now, warnings):
    info = dict(name=name, **x509util.describe(cert, now))
    problem = x509util.validity_problem(cert, now)
    if problem:
        warnings.append("%s (%s) is %s" % (name, info["subject"], problem))
    elif x509util.expires_soon(cert, now):
        warnings.append("%s (%s) expires in %d days" % (name, info["subject"], info["days_left"]))
    lifespan = x509util.lifespan_problem(cert)
    if lifespan:
        warnings.append("%s (%s) %s" % (name, info["subject"], lifespan))
    if not x509util.key_supported(x509util.public_key(cert)):
        warnings.append("%s has a %s key, which the firmware cannot use (it needs %s)" %
                        (name, info["key"], x509util.SUPPORTED))
    return info


def _key(name, key, matches, warnings):
    if not x509util.key_supported(key):
        warnings.append("%s is a %s key, which the firmware cannot use (it needs %s)" %
                        (name, x509util.key_name(key), x509util.SUPPORTED))
    return {"name": name, "key": x509util.key_name(key), "matches": matches}


def text(report):
    sources = report["source"] if isinstance(report["source"], list) else [report["source"]]
    lines = [", ".join(sources)]
    if report["format"] is not None:
        lines[0] += ": FORMAT %s%s" % (report["format"],
                                       ", TEST_ONLY" if report["test_only"] else "")
    for c in report["certificates"]:
        lines += [
            "", c["name"],
            "  subject   %s" % c["subject"],
            "  SANs      %s" % (", ".join(c["sans"]) or "-"),
            "  issuer    %s" % c["issuer"],
            "  valid     %s .. %s (%d days left)" %
            (c["not_before"], c["not_after"], c["days_left"]),
            "  key       %s" % c["key"],
            "  serial    %s" % c["serial"],
            "  sha256    %s" % c["sha256"]
        ]
    if report["keys"]:
        lines.append("")
    for k in report["keys"]:
        lines.append("%s: %s key, %s" %
                     (k["name"], k["key"],
                      "matches " + k["matches"] if k["matches"] else "matches no certificate"))
    if report["psk"]:
        lines += ["", "pre-shared keys (PSK; fingerprints, never the keys)"]
    for p in report["psk"]:
        lines.append("  %s: %d-bit key, fingerprint %s" % (p["identity"], p["bits"], p["fingerprint"]))
    if report["revoked"]:
        lines += ["", "revoked serials"]
    for r in report["revoked"]:
        lines.append("  %s: %s" % (r["issuer"], ", ".join(r["serials"]) or "none"))
    if report["warnings"]:
        lines += ["", "warnings"] + ["  ! " + w for w in report["warnings"]]
    return "\n".join(lines)
