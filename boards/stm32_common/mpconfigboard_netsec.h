// What every netsec STM32 board adds to the upstream board's header (included after it).

// mbedTLS's allocator (firmware/mbedtls/netsec_alloc.c) forgets the blocks it kept once a soft
// reset has swept the heap: runs at every boot and soft reset.
#define MICROPY_PORT_INIT_FUNC netsec_mbedtls_alloc_reset()
void netsec_mbedtls_alloc_reset(void);
