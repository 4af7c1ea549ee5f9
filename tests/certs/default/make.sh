#!/bin/sh
# Remakes the PUBLIC default test credentials in this directory and modules/Net_Security.py from
# them. They are NOT secret (their keys are published here): for tests and first steps only.
# After remaking, set TEST_CA_SHA256 in tools/netsec_cli/x509util.py to the new CA's fingerprint
# (the tests check it); the last line this script prints is that fingerprint.
set -eu
cd "$(dirname "$0")/../../.."
.venv/bin/netsec keygen --force -o tests/certs/default --host localhost --host 127.0.0.1 \
    --client client --ca-cn "netsec TEST CA" --org "netsec PUBLIC TEST CREDENTIALS"
.venv/bin/netsec convert --server-cert tests/certs/default/server.pem \
    --server-key tests/certs/default/server-key.pem --ca tests/certs/default/ca.pem \
    --host localhost --host 127.0.0.1 --client-ca tests/certs/default/ca.pem \
    --email-server-ca tests/certs/default/ca.pem -o modules/Net_Security.py
.venv/bin/netsec inspect tests/certs/default/ca.pem | grep sha256
