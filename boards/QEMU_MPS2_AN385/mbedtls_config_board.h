// mbedTLS configuration for the QEMU image: bare metal (allocations from the MicroPython heap,
// entropy and time from this board), then the profile every netsec image shares.
#ifndef NETSEC_MBEDTLS_CONFIG_BOARD_H
#define NETSEC_MBEDTLS_CONFIG_BOARD_H

#include <time.h>

#define MICROPY_MBEDTLS_CONFIG_BARE_METAL (1)

// Certificate dates are checked against the board's clock (mbedtls_time.c). There is no libc
// time() or gmtime_r() on this board, so the clock and the calendar come from the board.
time_t netsec_mbedtls_time(time_t *timer);
#define MBEDTLS_PLATFORM_TIME_MACRO netsec_mbedtls_time
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_GMTIME_R_ALT

#include "netsec_profile.h"

#endif
