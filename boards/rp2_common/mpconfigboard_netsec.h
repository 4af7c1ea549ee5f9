// What every netsec rp2 board adds to the upstream board's header (included after it).
// The tls module on mbedTLS on every board, also one without a network (RPI_PICO, RPI_PICO2),
// where netsec.selftest's in-memory handshake and the credential checks still run.
#undef MICROPY_PY_SSL
#define MICROPY_PY_SSL (1)
#define MICROPY_PY_HASHLIB_MD5 (1)
#define MICROPY_PY_HASHLIB_SHA1 (1)

// mbedTLS's allocator (firmware/mbedtls/netsec_alloc.c) forgets the blocks it kept once a soft
// reset has swept the heap: runs at every boot and soft reset.
#define MICROPY_PORT_INIT_FUNC netsec_mbedtls_alloc_reset()
void netsec_mbedtls_alloc_reset(void);
