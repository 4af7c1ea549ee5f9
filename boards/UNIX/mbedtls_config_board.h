// mbedTLS configuration for the host (unix) image: the unix port's own options, then the profile.
#ifndef NETSEC_MBEDTLS_CONFIG_BOARD_H
#define NETSEC_MBEDTLS_CONFIG_BOARD_H

#define MBEDTLS_CIPHER_MODE_CTR // the unix port's cryptolib uses AES-CTR
#define MBEDTLS_TIMING_C

#include "netsec_profile.h"

#endif
