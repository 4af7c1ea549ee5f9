# Part of the mbedTLS profile: the few mbedTLS files a handshake and bulk data spend nearly all
# their instructions in are built for speed; everything else stays optimised for size.
# A board's .mk includes this after BUILD is known. (make bench shows the effect;
# bench/variants.py sets NETSEC_MBEDTLS_SPEED_FILES on the command line to weigh others.)
NETSEC_MBEDTLS_SPEED_FILES = bignum bignum_core ecp ecp_curves aes gcm chacha20 poly1305
NETSEC_MBEDTLS_SPEED_OBJ = $(patsubst %,$(BUILD)/lib/mbedtls/library/%.o,$(NETSEC_MBEDTLS_SPEED_FILES))
$(NETSEC_MBEDTLS_SPEED_OBJ): CFLAGS += -O2
# make does not see flags: rebuild these objects when this file changes.
$(NETSEC_MBEDTLS_SPEED_OBJ): $(lastword $(MAKEFILE_LIST))
