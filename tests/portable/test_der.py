# The DER reader (netsec.der) on certificates made with `cryptography`; the expected values are
# what `cryptography` read from them. Runs on CPython and on MicroPython.
import hashlib
from binascii import hexlify, unhexlify

import Net_Security
from check import raises
from netsec import der

# EC P-256, serial with its top bit set (DER adds a 0x00), validity across the UTCTime /
# GeneralizedTime switch of RFC 5280 (2049-12-31 / 2050-01-01), and a subject that needs escaping,
# a multi-valued RDN, BMPString and UTF-8 values and an attribute type without a name.
EC_CERT = unhexlify(
    "308201b53082015ba0030201020214008f1e2d3c4b5a69788796a5b4c3d2e1f0011223300a06082a8648ce3d0403"
    "023036310b300906035504061302444531133011060355040a0c0a41636d652c20496e632e311230100603550403"
    "0c0941636d6520526f6f743020170d3439313233313233353935385a180f32303530303130313030303030315a30"
    "7d31153013060355040a0c0c23506c616e742b4c696e65203123300f06035504030c08676572c3a4742d37301006"
    "0a0992268993f22c6401010c027537311e301c06092a864886f70d010901160f6f7073406578616d706c652e636f"
    "6d3110300e06092b06010401868d1f010c0178310d300b06035504071e04005a00fc3059301306072a8648ce3d02"
    "0106082a8648ce3d0301070342000442dda5f9e61b524a20bfc7f0784289ecf20810060ca0ef6a60b00893cd0aa0"
    "a50a91c16cb1fb6f14154591c14a05da0389ab7c0042caa4bd66d8607abd4dda49300a06082a8648ce3d04030203"
    "48003045022100bae3c9f9c1cc9874d0a75edc9c4744eb055fce3b0413a8fda4e17208c1431a6602206c3cf8cb63"
    "47aa592f7d545511ca42037672f141dad76f3c86acc9e3f1a5959c"
)
EC_ISSUER = unhexlify(
    "3036310b300906035504061302444531133011060355040a0c0a41636d652c20496e632e3112301006035504030c"
    "0941636d6520526f6f74"
)
EC_POINT = unhexlify(
    "0442dda5f9e61b524a20bfc7f0784289ecf20810060ca0ef6a60b00893cd0aa0a50a91c16cb1fb6f14154591c14a"
    "05da0389ab7c0042caa4bd66d8607abd4dda49"
)
EC_KEY = unhexlify(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420848b5c3b9147758e74aa"
    "09ef6341b69ec8e85ed74875f56ee3c001ec9846ed87a1440342000442dda5f9e61b524a20bfc7f0784289ecf208"
    "10060ca0ef6a60b00893cd0aa0a50a91c16cb1fb6f14154591c14a05da0389ab7c0042caa4bd66d8607abd4dda49"
)

# RSA 1024 (PKCS#1 key), validity 1999-01-02 .. 2049-06-07, both UTCTime.
RSA_CERT = unhexlify(
    "308201773082011ea003020102020101300a06082a8648ce3d0403023036310b3009060355040613024445311330"
    "11060355040a0c0a41636d652c20496e632e3112301006035504030c0941636d6520526f6f74301e170d39393031"
    "30323033303430355a170d3439303630373038303931305a300e310c300a06035504030c0372736130819f300d06"
    "092a864886f70d010101050003818d0030818902818100b5fa3c6e68e497a23baae8b894e88af7d602d6c9ced006"
    "c596a5c8ea3965bd9e32ae69a10ade0105b42c00841a6f2a3a9808d4bf6e4557054b1467cc3b62998680afbcf407"
    "522f656f10e6feca6681394dcd0e88c3bc1cfdd373c6708abca969955ca4d756810e5d79081578c00d9cfce6a0f5"
    "f2c27b8d55e5838c50637e42710203010001300a06082a8648ce3d040302034700304402201f11d170fb9fe11ec5"
    "dffa7906164c6a53511e93f2f84fa98b89936963677c49022048e5605a14b9b5a4650bd60608bba48d18ce8b2b12"
    "664d40d6970eeeb597500c"
)
RSA_KEY = unhexlify(
    "3082025d02010002818100b5fa3c6e68e497a23baae8b894e88af7d602d6c9ced006c596a5c8ea3965bd9e32ae69"
    "a10ade0105b42c00841a6f2a3a9808d4bf6e4557054b1467cc3b62998680afbcf407522f656f10e6feca6681394d"
    "cd0e88c3bc1cfdd373c6708abca969955ca4d756810e5d79081578c00d9cfce6a0f5f2c27b8d55e5838c50637e42"
    "7102030100010281805a3cd60ea1f108c827f25e28799ebe9a9b031963452c9ecf081ef97c3c2e1953032abdb25f"
    "e32a7a9b975e4223a1903d31fadf147627e838f5bc0ea495a6151e68b5f9d5d05732c449df13d3dc5611c112ec97"
    "46acc5f93be6f61ae790a09df9c6c3370a78cf1fbbc39471ffe61a6663375ab25b62022235a909ae089ae2838902"
    "4100e88c0f38a330b0117405cbbcce937cb18979331417d4615556ef51681439b4c32bbe00730494a74c5ba9f6c7"
    "a9da8da05b13fe2e863317f00d17245cb0d2acaf024100c8548fc092b5b9c84f25c820c167ee76ef77864a7ed761"
    "25d07d92c7df336bacb1640d32041d14a98436a44223f780c07ee6751c79aef123457fcebbef350adf02404d0b82"
    "4b807db407c449db4b6da19db1705b9059badf69740dbe72592a42482a5586b8bd62aa219781d318e8e3d47e11bf"
    "bb2afe9d05b68b98baaf186a99120f024100b0eb2d412ecfdad0f24535a6e7e7778c061412bf3ba1cea3ecaad9b4"
    "36845cf5587c39c3102af69276b722fd5e72387cc815931ba0c34526973c36417711eb15024100d341ebf9461eea"
    "d5899b268e0cc2f4920c79b04198f6000168616a184c77ba3698c53559d0d52368346e8dd3d7035a588e639dcf89"
    "de76ac18da5d5795669758"
)

# Another EC key (SEC1 "traditional" DER): belongs to none of the certificates above.
OTHER_EC_KEY = unhexlify(
    "3077020101042056b45c4fc800f17332bc890dafea7cf60799d1c378faf5335dd43184fb63873aa00a06082a8648"
    "ce3d030107a14403420004e7afe8c241efe3bf46f59d977c97248d227f7052bbd46b2c8b04e4361c4304e7a70da9"
    "5da1c9233b76b87a2d1394da8a3d2fb8945ce192376d81b713a774bdc9"
)

# A version 1 certificate (no [0] version field), made by `openssl x509 -req`.
V1_CERT = unhexlify(
    "308201193081c00214304a298e184a063ac58a174d5b6b1e7bed4cbe6a300a06082a8648ce3d0403023011310f30"
    "0d06035504030c06657870204341301e170d3236313132353134353031315a170d3236313230353134353031315a"
    "300e310c300a06035504030c03636c693059301306072a8648ce3d020106082a8648ce3d03010703420004acbb97"
    "b42c53600bb86956b01e8008b41e22a8c49f87ffa4f32b6f9ffe60c1c80fc3b0f7921eb7a130d50e40d2ba1778a3"
    "5c335b8598f5d8ad8065dc8372f4b5300a06082a8648ce3d040302034800304502202d2934935383b130db9ec822"
    "f96bc0f4f617a6f26574026358b997b6bf1e0afd022100a624eb3281995d1064000c9c8a5f734f1dc0c24f359c53"
    "99b8082cabdd6b0edf"
)


def test_serial_keeps_all_twenty_bytes():
    assert der.certificate(EC_CERT)[0] == 0x8F1E2D3C4B5A69788796A5B4C3D2E1F0011223
    assert der.certificate(RSA_CERT)[0] == 1
    assert der.certificate(V1_CERT)[0] == 0x304A298E184A063AC58A174D5B6B1E7BED4CBE6A


def test_issuer_is_the_name_der_revoked_lists_use():
    assert bytes(der.certificate(EC_CERT)[1]) == EC_ISSUER
    assert bytes(der.certificate(RSA_CERT)[1]) == EC_ISSUER


def test_fields_are_views_of_the_certificate_not_copies():
    serial, issuer, _, _, subject, key_info = der.certificate(EC_CERT)
    for field in (issuer, subject, key_info):
        assert isinstance(field, memoryview)


def test_validity_across_the_utctime_generalizedtime_switch():
    assert der.certificate(EC_CERT)[2:4] == ((2049, 12, 31, 23, 59, 58), (2050, 1, 1, 0, 0, 1))


def test_validity_with_a_twentieth_century_utctime():
    assert der.certificate(RSA_CERT)[2:4] == ((1999, 1, 2, 3, 4, 5), (2049, 6, 7, 8, 9, 10))


def test_version_1_certificate():
    serial, issuer, not_before, not_after, subject, _ = der.certificate(V1_CERT)
    assert (der.name_text(subject), der.name_text(issuer)) == ("CN=cli", "CN=exp CA")
    assert (not_before, not_after) == ((2026, 11, 25, 14, 50, 11), (2026, 12, 5, 14, 50, 11))


def test_name_text_is_rfc4514_as_cryptography_prints_it():
    serial, issuer, _, _, subject, _ = der.certificate(EC_CERT)
    assert der.name_text(issuer) == "CN=Acme Root,O=Acme\\, Inc.,C=DE"
    assert der.name_text(subject) == (
        "L=Z\u00fc,1.3.6.1.4.1.99999.1=x,1.2.840.113549.1.9.1=ops@example.com,"
        "CN=ger\u00e4t-7+UID=u7,O=\\#Plant\\+Line\\ ")


def test_time_text():
    assert der.time_text((2050, 1, 1, 0, 0, 1)) == "2050-01-01T00:00:01Z"


def test_ec_public_key_is_the_point():
    assert bytes(der.public_key(der.certificate(EC_CERT)[5])) == EC_POINT


def test_keys_match_their_certificates_only():
    assert der.key_matches(der.certificate(EC_CERT)[5], EC_KEY)
    assert der.key_matches(der.certificate(RSA_CERT)[5], RSA_KEY)
    assert not der.key_matches(der.certificate(EC_CERT)[5], OTHER_EC_KEY)
    assert not der.key_matches(der.certificate(EC_CERT)[5], RSA_KEY)
    assert not der.key_matches(der.certificate(RSA_CERT)[5], EC_KEY)


def test_frozen_net_security_agrees_with_its_info():
    # INFO was written on the host by `netsec convert` with `cryptography`.
    for field in ("SERVER_CERT", "CLIENT_CERT"):
        cert, info = getattr(Net_Security, field), Net_Security.INFO.get(field)
        if cert is None:
            continue
        serial, issuer, not_before, not_after, subject, _ = der.certificate(cert)
        assert der.name_text(subject) == info["subject"]
        assert der.name_text(issuer) == info["issuer"]
        assert der.time_text(not_before) == info["not_before"]
        assert der.time_text(not_after) == info["not_after"]
    assert der.key_matches(der.certificate(Net_Security.SERVER_CERT)[5], Net_Security.SERVER_KEY)


def test_frozen_net_security_lists_have_constant_info():
    # A list field's INFO entry is a (subject, not_after, sha256) tuple of str: a constant kept in
    # flash. A dict per certificate would be built in RAM when Net_Security is imported.
    assert type(Net_Security.INFO["CLIENT_CAS"][0]) is tuple
    for field in ("SERVER_CHAIN", "CLIENT_CAS", "EMAIL_SERVER_CAS"):
        certs, entries = getattr(Net_Security, field), Net_Security.INFO[field]
        assert type(entries) is tuple and len(entries) == len(certs)
        for cert, entry in zip(certs, entries):
            assert type(entry) is tuple and len(entry) == 3
            _, _, _, not_after, subject, _ = der.certificate(cert)
            assert entry[0] == der.name_text(subject)
            assert entry[1] == der.time_text(not_after)
            assert entry[2] == hexlify(hashlib.sha256(cert).digest()).decode()


def test_truncated_certificate_is_refused():
    e = raises(ValueError, der.certificate, EC_CERT[:200])
    assert "DER" in str(e)


def test_trailing_bytes_are_refused():
    e = raises(ValueError, der.certificate, EC_CERT + b"\x00")
    assert "1 stray bytes after the certificate" in str(e)


def test_not_a_certificate_is_refused():
    e = raises(ValueError, der.certificate, b"-----BEGIN CERTIFICATE-----\nMIIB")
    assert "expected Certificate" in str(e)
    raises(ValueError, der.certificate, b"")
    raises(ValueError, der.certificate, EC_KEY)


def test_length_beyond_the_buffer_is_refused():
    # A Certificate SEQUENCE claiming 0x7fffff bytes.
    e = raises(ValueError, der.certificate, b"\x30\x83\x7f\xff\xff" + EC_CERT[4:])
    assert "runs past the end" in str(e)


def test_bad_time_is_refused():
    bad = bytearray(EC_CERT)
    at = bytes(bad).find(b"491231235958Z")
    bad[at:at + 2] = b"4x"
    e = raises(ValueError, der.certificate, bytes(bad))
    assert "4x1231235958Z" in str(e)


def test_unsupported_key_algorithm_is_named():
    # An Ed25519 SubjectPublicKeyInfo (OID 1.3.101.112).
    info = unhexlify("302a300506032b6570032100") + bytes(32)
    e = raises(ValueError, der.public_key, info)
    assert "1.3.101.112" in str(e)
