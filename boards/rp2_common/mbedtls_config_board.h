// mbedTLS configuration of netsec's rp2 boards: the rp2 port's clock hooks (its real-time clock,
// mbedtls_port.c) and bare-metal settings, then the profile every netsec image shares.
// Entropy is the port's: mbedtls_hardware_poll in ports/rp2/mbedtls/mbedtls_port.c samples the
// ring oscillator (ROSC).
#ifndef NETSEC_MBEDTLS_CONFIG_BOARD_H
#define NETSEC_MBEDTLS_CONFIG_BOARD_H

#include <time.h>

#define MICROPY_MBEDTLS_CONFIG_BARE_METAL (1)

time_t rp2_rtctime_seconds(time_t *timer);
#define MBEDTLS_PLATFORM_TIME_MACRO rp2_rtctime_seconds
#define MBEDTLS_PLATFORM_MS_TIME_ALT mbedtls_ms_time

#include "../../firmware/mbedtls/netsec_profile.h"

#endif
