# netsec host image: unix port with tls on mbedTLS (netsec profile), asyncio, netsec frozen in.
FROZEN_MANIFEST = $(VARIANT_DIR)/manifest.py
MBEDTLS_CONFIG_FILE = '"mbedtls_config_board.h"'
CFLAGS_EXTRA += -I$(VARIANT_DIR) -I$(VARIANT_DIR)/../../firmware/mbedtls

# Sources we do not fetch (no Berkeley DB, no bundled libffi) and features netsec does not use.
MICROPY_PY_BTREE = 0
MICROPY_PY_FFI = 0

# Speed-critical mbedTLS files at -O2 (the profile's choice, shared by every image).
include $(VARIANT_DIR)/../../firmware/mbedtls/speed.mk
# The mbedTLS sources the profile needs beyond MicroPython's list (PSA crypto, TLS 1.3).
include $(VARIANT_DIR)/../../firmware/mbedtls/sources.mk
