// mbedTLS's allocator on bare-metal boards (MBEDTLS_PLATFORM_STD_CALLOC/FREE in netsec_speed.h):
// the MicroPython heap, as MicroPython's own configuration has it (m_tracked_calloc), plus a
// few freed small blocks kept for reuse. mbedTLS's bignum code allocates and frees the limb
// arrays of its temporaries thousands of times per handshake; from the heap each costs a search
// of the allocation table and a clear (a fifth of an EC handshake on the Cortex-M3), from here
// a list pop and a small clear.
//
// Every block carries an 8-byte header naming its size class. Kept blocks stay allocated in
// the heap (on MicroPython's list of tracked allocations, so the garbage collector leaves them
// alone); when the heap cannot give a block, they are freed and the allocation tried again.
// A soft reset sweeps the whole heap: netsec_mbedtls_alloc_reset() then forgets them.
#include <stdint.h>
#include <string.h>

#include "py/mpconfig.h"
#include "py/misc.h"
#include "py/mpstate.h"

#define GRANULE (16)
#define CLASSES (8) // blocks up to 128 bytes: the numbers and products of P-256 and P-384
#define KEPT_PER_CLASS (4)
#define LARGE (0xff)

typedef struct {
    uint32_t size_class; // 0 .. CLASSES-1, or LARGE
    uint32_t padding; // keeps the block 8-byte aligned
} header_t;

static header_t *kept[CLASSES][KEPT_PER_CLASS];
static uint8_t kept_count[CLASSES];

void netsec_mbedtls_alloc_reset(void) {
    // The soft reset swept the whole heap, the blocks kept here with it; MicroPython's list of
    // tracked allocations, which they were still on, would point into freed memory.
    MP_STATE_VM(m_tracked_head) = NULL;
    memset(kept_count, 0, sizeof(kept_count));
}

static void release_kept(void) {
    for (int c = 0; c < CLASSES; ++c) {
        while (kept_count[c]) {
            m_tracked_free(kept[c][--kept_count[c]]);
        }
    }
}

void *netsec_mbedtls_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        return NULL;
    }
    size_t bytes = count * size;
    uint32_t c = bytes && bytes <= CLASSES * GRANULE ? (bytes - 1) / GRANULE : LARGE;
    header_t *block;
    if (c != LARGE && kept_count[c]) {
        block = kept[c][--kept_count[c]];
        memset(block + 1, 0, (c + 1) * GRANULE);
    } else {
        size_t total = sizeof(header_t) + (c == LARGE ? bytes : (c + 1) * GRANULE);
        block = m_tracked_calloc(1, total);
        if (block == NULL) {
            release_kept();
            block = m_tracked_calloc(1, total);
            if (block == NULL) {
                return NULL;
            }
        }
        block->size_class = c;
    }
    return block + 1;
}

void netsec_mbedtls_free(void *ptr) {
    if (ptr == NULL) {
        return;
    }
    header_t *block = (header_t *)ptr - 1;
    uint32_t c = block->size_class;
    if (c != LARGE && kept_count[c] < KEPT_PER_CLASS) {
        kept[c][kept_count[c]++] = block;
    } else {
        m_tracked_free(block);
    }
}
