# What every netsec STM32 board adds to the MicroPython board it is layered on. A board's
# mpconfigboard.mk sets NETSEC_UPSTREAM_BOARD and includes this; its mpconfigboard.h and HAL
# configuration include the upstream board's, and its pins.csv is a link to the upstream one.
NETSEC_STM32 := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
include boards/$(NETSEC_UPSTREAM_BOARD)/mpconfigboard.mk

# netsec and Net_Security frozen in; Ethernet and lwIP as the upstream board has them; the
# netsec mbedTLS profile. Entropy is the port's: mbedtls_hardware_poll in
# ports/stm32/mbedtls/mbedtls_port.c reads the STM32's RNG.
FROZEN_MANIFEST = $(NETSEC_STM32)/manifest.py
MICROPY_PY_LWIP = 1
MICROPY_PY_SSL = 1
MICROPY_SSL_MBEDTLS = 1
MBEDTLS_CONFIG_FILE = '"mbedtls_config_board.h"'
CFLAGS += -I$(NETSEC_STM32) -I$(NETSEC_STM32)/../../firmware/mbedtls

# mbedTLS's allocator: the MicroPython heap with freed small blocks kept for reuse.
SRC_C += $(NETSEC_STM32)/../../firmware/mbedtls/netsec_alloc.c

include $(NETSEC_STM32)/../../firmware/mbedtls/speed.mk
# The mbedTLS sources the profile needs beyond MicroPython's list (PSA crypto, TLS 1.3).
include $(NETSEC_STM32)/../../firmware/mbedtls/sources.mk
