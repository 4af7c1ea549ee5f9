// mbedTLS configuration of netsec's STM32 boards: the stm32 port's clock hooks (its RTC,
// mbedtls_port.c) and bare-metal settings, then the profile every netsec image shares.
#ifndef NETSEC_MBEDTLS_CONFIG_BOARD_H
#define NETSEC_MBEDTLS_CONFIG_BOARD_H

#include <time.h>

#define MICROPY_MBEDTLS_CONFIG_BARE_METAL (1)

time_t stm32_rtctime_seconds(time_t *timer);
#define MBEDTLS_PLATFORM_TIME_MACRO stm32_rtctime_seconds
#define MBEDTLS_PLATFORM_MS_TIME_ALT mbedtls_ms_time

#include "netsec_profile.h"

#endif
