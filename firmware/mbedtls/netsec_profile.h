// netsec's mbedTLS profile: one configuration for every image (unix, QEMU, boards).
// A board's own config file sets its port-specific options and then includes this file.
// It starts from MicroPython's common configuration and changes only what netsec needs.
#ifndef NETSEC_MBEDTLS_PROFILE_H
#define NETSEC_MBEDTLS_PROFILE_H

#include "extmod/mbedtls/mbedtls_config_common.h"

// Keep the peer's certificate after the handshake: getpeercert(True) and the per-connection
// log line need it.
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE

// Faster NIST curve arithmetic (P-256 dominates handshake time on a Cortex-M).
#define MBEDTLS_ECP_NIST_OPTIM

// Small curves give too little security for a new deployment; nothing we talk to needs them.
#undef MBEDTLS_ECP_DP_SECP192R1_ENABLED
#undef MBEDTLS_ECP_DP_SECP224R1_ENABLED
#undef MBEDTLS_ECP_DP_SECP192K1_ENABLED
#undef MBEDTLS_ECP_DP_SECP224K1_ENABLED

// Static-RSA key exchange has no forward secrecy: only ECDHE key exchanges remain.
#undef MBEDTLS_KEY_EXCHANGE_RSA_ENABLED

// Groups: Mozilla's intermediate list is X25519, P-256, P-384. secp256k1 and P-521 are outside
// it (a scanner flags them), and dropping them saves flash.
#undef MBEDTLS_ECP_DP_SECP256K1_ENABLED
#undef MBEDTLS_ECP_DP_SECP521R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED

// ChaCha20-Poly1305 beside AES-GCM (RFC 7905 for TLS 1.2, RFC 8446 for TLS 1.3).
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C

// TLS 1.3 (RFC 8446) beside TLS 1.2. mbedTLS runs TLS 1.3 on PSA crypto; with USE_PSA_CRYPTO
// TLS 1.2 uses the same PSA code, so both versions share one ECDH/AEAD implementation (smaller,
// and the benchmarks compare like with like). PSA's random generator is seeded from the same
// entropy source as the rest (the OS on unix, mbedtls_hardware_poll on bare metal).
// Nothing is persisted: no MBEDTLS_PSA_CRYPTO_STORAGE_C, keys live in RAM only.
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_USE_PSA_CRYPTO
#define MBEDTLS_HKDF_C
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE // RFC 8446 D.4: passes middleboxes
// TLS 1.3 signs and verifies RSA with PSS only (RFC 8446 4.2.3): without it an RSA identity, or
// a peer's RSA certificate, cannot do TLS 1.3. mbedTLS lists rsa_pss_rsae_* in the
// signature_algorithms it sends (ClientHello, CertificateRequest) only with RSASSA_PSS_SUPPORT:
// without that, an RSA server key, server certificate or client certificate failed TLS 1.3.
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED

// Extended Master Secret (RFC 7627) for TLS 1.2; mbedTLS offers and accepts it when compiled in.
// Renegotiation stays out (MBEDTLS_SSL_RENEGOTIATION undefined): the secure-renegotiation
// indication (RFC 5746) is still sent, and a renegotiation request is refused.
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET

// Session resumption by ticket, TLS 1.2 (RFC 5077) and TLS 1.3. Ticket keys are made from the
// RNG in RAM (MBEDTLS_SSL_TICKET_C) and rotated by mbedTLS; no server-side session cache.
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C

// External pre-shared keys: TLS 1.2 PSK and ECDHE-PSK suites (RFC 4279, 5489), TLS 1.3
// psk_ke/psk_dhe_ke (which also carry ticket resumption).
#define MBEDTLS_KEY_EXCHANGE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED

// ALPN (RFC 7301): the server selects http/1.1 for browsers and curl.
#define MBEDTLS_SSL_ALPN

// Speed and memory settings, measured one at a time: a file of their own.
#include "netsec_speed.h"

#endif // NETSEC_MBEDTLS_PROFILE_H
