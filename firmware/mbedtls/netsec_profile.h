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

#endif // NETSEC_MBEDTLS_PROFILE_H
