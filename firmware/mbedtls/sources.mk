# Part of the mbedTLS profile: the library files it needs beyond those MicroPython 1.25 builds
# (extmod/extmod.mk lists no PSA crypto, TLS 1.3 or HKDF sources). A board's .mk includes this;
# files whose features the profile leaves out compile to nothing and unused code is dropped at
# link time.
SRC_THIRDPARTY_C += $(addprefix lib/mbedtls/library/,\
	block_cipher.c hkdf.c psa_util.c \
	psa_crypto.c psa_crypto_aead.c psa_crypto_cipher.c psa_crypto_client.c \
	psa_crypto_driver_wrappers_no_static.c psa_crypto_ecp.c psa_crypto_hash.c psa_crypto_mac.c \
	psa_crypto_random.c psa_crypto_rsa.c psa_crypto_slot_management.c \
	ssl_tls13_client.c ssl_tls13_generic.c ssl_tls13_keys.c ssl_tls13_server.c)
# Files a bench/variants.py variant adds (relative to MicroPython's tree), with its flags for
# them: they may include mbedTLS's internal headers, as its p256-m driver's entry points do.
SRC_THIRDPARTY_C += $(NETSEC_MBEDTLS_BENCH_SRC)
$(addprefix $(BUILD)/,$(NETSEC_MBEDTLS_BENCH_SRC:.c=.o)): CFLAGS += -I$(TOP)/lib/mbedtls/library \
	$(NETSEC_MBEDTLS_BENCH_CFLAGS)
