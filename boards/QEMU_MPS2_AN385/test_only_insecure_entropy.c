// TEST-ONLY, INSECURE "entropy" for the QEMU mps2-an385 image.
//
// QEMU's mps2 boards have no random number generator, yet mbedTLS must seed its DRBG from an
// entropy source (MBEDTLS_ENTROPY_HARDWARE_ALT calls mbedtls_hardware_poll). This stand-in is
// a predictable generator (splitmix64) started from a fixed seed, so a run can be repeated
// exactly. Anyone can reproduce every key, nonce and ECDHE share it leads to: it must never
// reach a real device. It compiles only for the QEMU mps2 SoC *and* with the macro that only
// boards/QEMU_MPS2_AN385/mpconfigboard.mk defines, and it says so at every boot.
#if !defined(QEMU_SOC_MPS2) || !defined(NETSEC_QEMU_TEST_ONLY_INSECURE_ENTROPY)
#error "test_only_insecure_entropy.c is predictable and for the QEMU mps2 board only; a real board must use its hardware random number generator"
#endif

#include <stddef.h>
#include <stdint.h>

#include "py/mpprint.h"
#include "board.h"

// A fixed start; ENTROPY_SEED (make variable) selects another sequence.
#define FIXED_SEED (0x6e65747365635121ULL)

static uint64_t state = FIXED_SEED ^ NETSEC_TEST_ONLY_ENTROPY_SEED;

// splitmix64: a good spread of bits, and no secrecy at all.
static uint64_t next_u64(void) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen) {
    (void)data;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = next_u64();
        for (size_t j = 0; j < 8 && i + j < len; ++j) {
            output[i + j] = (unsigned char)(v >> (8 * j));
        }
    }
    *olen = len;
    return 0;
}

void netsec_test_only_entropy_warning(void) {
    mp_printf(&mp_plat_print,
        "\n"
        "*** WARNING: TEST-ONLY INSECURE ENTROPY (seed %u). This QEMU image has no random\n"
        "*** number generator: its TLS keys and nonces are predictable. For tests only.\n"
        "\n", (unsigned)NETSEC_TEST_ONLY_ENTROPY_SEED);
}
