# Part of the mbedTLS profile: the few mbedTLS files a handshake and bulk data spend nearly all
# their instructions in are built for speed; everything else stays optimised for size.
# A board's .mk includes this after BUILD is known. (make bench shows the effect.)
NETSEC_MBEDTLS_SPEED_OBJ = $(addprefix $(BUILD)/lib/mbedtls/library/,\
	bignum.o bignum_core.o ecp.o ecp_curves.o aes.o gcm.o \
	chacha20.o poly1305.o)
$(NETSEC_MBEDTLS_SPEED_OBJ): CFLAGS += -O2
# make does not see flags: rebuild these objects when this file changes.
$(NETSEC_MBEDTLS_SPEED_OBJ): $(lastword $(MAKEFILE_LIST))
