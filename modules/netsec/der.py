# A minimal DER reader: just what netsec.tls needs from an X.509 certificate on the device
# (serial, issuer, validity, subject, public key). It works on memoryview slices of the
# certificate, so reading a field copies nothing. Runs on MicroPython and CPython.

_SEQUENCE = 0x30
_INTEGER = 0x02
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18
_OID_EC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"  # 1.2.840.10045.2.1
_OID_RSA_KEY = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1

# The attribute names of RFC 4514 (others print as dotted OIDs), as `cryptography` and so
# `netsec inspect` print them.
_ATTRIBUTE_NAMES = {
    b"\x55\x04\x03": "CN",
    b"\x55\x04\x06": "C",
    b"\x55\x04\x07": "L",
    b"\x55\x04\x08": "ST",
    b"\x55\x04\x09": "STREET",
    b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01": "UID",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19": "DC",
}
_TEXT_TAGS = (0x0C, 0x12, 0x13, 0x14, 0x16, 0x1A)  # UTF8, Numeric, Printable, T61, IA5, Visible


def read(buf, pos=0, end=None):
    """The DER element starting at buf[pos]: (tag, content_start, content_end)."""
    if end is None:
        end = len(buf)
    if pos + 2 > end:
        raise ValueError("DER: element at byte %d is truncated" % pos)
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or pos + count > end:
            raise ValueError("DER: bad length field at byte %d" % (pos - 1))
        length = 0
        for i in range(count):
            length = (length << 8) | buf[pos + i]
        pos += count
    if pos + length > end:
        raise ValueError("DER: element at byte %d runs past the end of its container" % pos)
    return tag, pos, pos + length


def _expect(buf, pos, end, tag, what):
    if pos < end and buf[pos] != tag:
        raise ValueError("DER: expected %s at byte %d, found tag 0x%02x" % (what, pos, buf[pos]))
    return read(buf, pos, end)[1:]


def certificate(cert):
    """(serial, issuer, not_before, not_after, subject, public_key_info) of a DER certificate.

    serial is an int; issuer, subject and public_key_info are memoryview slices holding the
    whole DER element (so bytes(issuer) is the Name DER that Net_Security.REVOKED uses as key);
    not_before and not_after are UTC (year, month, day, hour, minute, second) tuples, which
    compare directly with time.gmtime()[:6].
    """
    mv = memoryview(cert)
    body, end = _expect(mv, 0, len(mv), _SEQUENCE, "Certificate")
    if end != len(mv):
        raise ValueError("DER: %d stray bytes after the certificate" % (len(mv) - end))
    pos, end = _expect(mv, body, end, _SEQUENCE, "TBSCertificate")
    tag, start, stop = read(mv, pos, end)
    if tag == 0xA0:  # [0] version: absent in v1 certificates
        pos = stop
    start, stop = _expect(mv, pos, end, _INTEGER, "serialNumber")
    serial = int.from_bytes(mv[start:stop], "big")
    pos = _expect(mv, stop, end, _SEQUENCE, "signature algorithm")[1]
    issuer_end = _expect(mv, pos, end, _SEQUENCE, "issuer Name")[1]
    issuer = mv[pos:issuer_end]
    start, validity_end = _expect(mv, issuer_end, end, _SEQUENCE, "validity")
    not_before, pos = _time(mv, start, validity_end)
    not_after, pos = _time(mv, pos, validity_end)
    subject_end = _expect(mv, validity_end, end, _SEQUENCE, "subject Name")[1]
    key_end = _expect(mv, subject_end, end, _SEQUENCE, "subjectPublicKeyInfo")[1]
    return (serial, issuer, not_before, not_after, mv[validity_end:subject_end],
            mv[subject_end:key_end])


def _time(mv, pos, end):
    tag, start, stop = read(mv, pos, end)
    text = str(bytes(mv[start:stop]), "ascii")
    digits = 12 if tag == _UTC_TIME else 14 if tag == _GENERALIZED_TIME else 0
    if not digits or len(text) != digits + 1 or text[-1] != "Z" or not text[:-1].isdigit():
        raise ValueError("DER: certificate validity time %r is not UTC YYMMDDHHMMSSZ or "
                         "YYYYMMDDHHMMSSZ" % text)
    if digits == 12:
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000  # RFC 5280: UTCTime years 50-99 are 19xx
    else:
        year = int(text[:4])
    rest = text[digits - 10:]
    fields = (year,) + tuple(int(rest[i:i + 2]) for i in range(0, 10, 2))
    return fields, stop


def time_text(t):
    """'YYYY-MM-DDTHH:MM:SSZ' for a (year, month, day, hour, minute, second) tuple."""
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % tuple(t[:6])


def name_text(name):
    """The RFC 4514 string of a DER Name, most specific part first, e.g. 'CN=device,O=Acme'."""
    rdns = []
    pos, end = _expect(name, 0, len(name), _SEQUENCE, "Name")
    while pos < end:
        set_pos, set_end = _expect(name, pos, end, 0x31, "RelativeDistinguishedName")
        parts = []
        while set_pos < set_end:
            atv_pos, atv_end = _expect(name, set_pos, set_end, _SEQUENCE, "attribute")
            oid_start, oid_end = _expect(name, atv_pos, atv_end, 0x06, "attribute type")
            oid = bytes(name[oid_start:oid_end])
            parts.append(_ATTRIBUTE_NAMES.get(oid) or _dotted(oid))
            parts[-1] += "=" + _value_text(name, oid_end, atv_end)
            set_pos = atv_end
        rdns.append("+".join(parts))
        pos = set_end
    rdns.reverse()
    return ",".join(rdns)


def _value_text(buf, pos, end):
    tag, start, stop = read(buf, pos, end)
    raw = bytes(buf[start:stop])
    if tag in _TEXT_TAGS:
        text = str(raw, "utf-8")
    elif tag == 0x1E:  # BMPString: UCS-2, big-endian
        text = "".join(chr((raw[i] << 8) | raw[i + 1]) for i in range(0, len(raw) - 1, 2))
    else:  # RFC 4514: a value of unknown type is printed as '#' and its DER in hex
        import binascii
        return "#" + str(binascii.hexlify(bytes(buf[pos:stop])), "ascii")
    out = ""
    for i, ch in enumerate(text):
        if ch in ',+"\\<>;' or (ch in " #" and i == 0) or (ch == " " and i == len(text) - 1):
            out += "\\"
        out += ch
    return out


def _dotted(oid):
    numbers = []
    value = 0
    for byte in oid:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(value)
            value = 0
    first = min(numbers[0] // 40, 2)
    return ".".join(str(n) for n in [first, numbers[0] - 40 * first] + numbers[1:])


def public_key(public_key_info):
    """The bytes that identify a certificate's key in its private key's DER too: the EC point
    for EC keys, the modulus for RSA keys (both sit verbatim in the private key files that
    mbedTLS reads, which is how netsec.tls checks that a key belongs to a certificate)."""
    mv = memoryview(public_key_info)
    pos, end = _expect(mv, 0, len(mv), _SEQUENCE, "subjectPublicKeyInfo")
    alg_pos, alg_end = _expect(mv, pos, end, _SEQUENCE, "key algorithm")
    oid_start, oid_end = _expect(mv, alg_pos, alg_end, 0x06, "key algorithm OID")
    oid = bytes(mv[oid_start:oid_end])
    start, stop = _expect(mv, alg_end, end, 0x03, "public key BIT STRING")
    key = mv[start + 1:stop]  # skip the count of unused bits
    if oid == _OID_EC_KEY:
        return key
    if oid == _OID_RSA_KEY:
        pos, end = _expect(key, 0, len(key), _SEQUENCE, "RSA public key")
        start, stop = _expect(key, pos, end, _INTEGER, "RSA modulus")
        return key[start:stop]
    raise ValueError("DER: unsupported public key algorithm %s (EC and RSA only)" % _dotted(oid))


def key_matches(public_key_info, private_key):
    """True if the DER private key holds the public key of public_key_info."""
    return bytes(public_key(public_key_info)) in bytes(private_key)
