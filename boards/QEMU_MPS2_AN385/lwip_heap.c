// lwIP's buffers in MicroPython's heap (lwipopts.h sends mem_malloc/mem_free here). Every
// frame received and every buffer lwIP sends from is a tracked allocation (m_tracked_calloc:
// the garbage collector keeps it alive until lwIP frees it), so lwIP and TLS draw on the same
// heap. lwIP's control blocks (PCBs, segment descriptors, timers) stay in its static pools.
//
// Three rules keep this safe:
// - While lwIP walks its own lists (input: network_lan.c marks it; timers: below), its allocations
//   must not start a garbage collection: a finaliser run by it could close a socket and unlink
//   a PCB from the list being walked. Such an allocation fails instead (lwIP retries later)
//   and the next poll collects, when lwIP is idle.
// - Two budgets, like the static pool and heap these buffers replace: received frames at most
//   NETSEC_LWIP_RX_BYTES, lwIP's own buffers at most NETSEC_LWIP_OWN_BYTES, so that a flood can
//   take only that much from the Python code.
// - At soft reset the heap is swept and reused, but lwIP lives on: first it must let go of
//   every buffer (netsec_lwip_heap_release, before the sweep).
#include "py/gc.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "lwip/etharp.h"
#include "lwip/priv/tcp_priv.h"
#include "board.h"

// What each allocation records in front of lwIP's bytes.
typedef struct {
    uint32_t size : 31;
    uint32_t received : 1; // counted in the received-frame budget
} lwip_block_t;

static netsec_lwip_context_t context = NETSEC_LWIP_PYTHON;
static bool collect_wanted;
static size_t held[2];      // bytes held: [0] lwIP's own buffers, [1] received frames
static size_t rx_dropped;   // received frames no memory was found for

netsec_lwip_context_t netsec_lwip_enter(netsec_lwip_context_t now) {
    netsec_lwip_context_t before = context;
    context = now;
    return before;
}

void netsec_lwip_exit(netsec_lwip_context_t before) {
    context = before;
}

void netsec_lwip_collect_if_wanted(void) {
    if (collect_wanted && !gc_is_locked() && MP_STATE_MEM(gc_auto_collect_enabled)) {
        collect_wanted = false;
        gc_collect();
    }
}

void *netsec_lwip_calloc(size_t count, size_t size) {
    bool received = context == NETSEC_LWIP_RECEIVING;
    size_t limit = received ? NETSEC_LWIP_RX_BYTES : NETSEC_LWIP_OWN_BYTES;
    size_t bytes = count * size;
    if (size != 0 && bytes / size != count) {
        return NULL;
    }
    lwip_block_t *block = NULL;
    if (held[received] + bytes <= limit) {
        uint16_t auto_collect = MP_STATE_MEM(gc_auto_collect_enabled);
        if (context == NETSEC_LWIP_CORE) {
            MP_STATE_MEM(gc_auto_collect_enabled) = 0;
        }
        block = m_tracked_calloc(1, sizeof(lwip_block_t) + bytes);
        MP_STATE_MEM(gc_auto_collect_enabled) = auto_collect;
        if (block == NULL && context == NETSEC_LWIP_CORE) {
            collect_wanted = true;
        }
    }
    if (block == NULL) {
        rx_dropped += received;
        return NULL;
    }
    block->size = bytes;
    block->received = received;
    held[received] += bytes;
    return block + 1;
}

void *netsec_lwip_malloc(size_t size) {
    return netsec_lwip_calloc(1, size);
}

void netsec_lwip_free(void *ptr) {
    lwip_block_t *block = (lwip_block_t *)ptr - 1;
    held[block->received] -= block->size;
    m_tracked_free(block);
}

void netsec_lwip_heap_counts(size_t counts[3]) {
    counts[0] = held[1];
    counts[1] = held[0];
    counts[2] = rx_dropped;
}

// Before a soft reset's sweep: abort every connection (a reset to its peer, as when a process
// holding sockets exits) and drop the frames waiting for an ARP answer; what is left (listening
// and UDP PCBs, TIME-WAIT) holds no buffer. The sockets' finalisers then find their PCB gone.
static void netsec_lwip_heap_release(void) {
    netsec_lwip_context_t before = netsec_lwip_enter(NETSEC_LWIP_CORE);
    while (tcp_active_pcbs != NULL) {
        tcp_abort(tcp_active_pcbs);
    }
    struct netif *netif;
    NETIF_FOREACH(netif) {
        etharp_cleanup_netif(netif);
    }
    netsec_lwip_exit(before);
    collect_wanted = false;
}

// main.c's soft reset calls gc_sweep_all (mps2.mk wraps it).
void __real_gc_sweep_all(void);
void __wrap_gc_sweep_all(void) {
    netsec_lwip_heap_release();
    __real_gc_sweep_all();
}

// lwIP's timers walk its PCB lists, whoever runs them: the idle loop (netsec_lan_timers in
// network_lan.c), or a Python call of lwip.callback() (mps2.mk wraps sys_check_timeouts).
void __real_sys_check_timeouts(void);
void __wrap_sys_check_timeouts(void) {
    netsec_lwip_context_t before = netsec_lwip_enter(NETSEC_LWIP_CORE);
    __real_sys_check_timeouts();
    netsec_lwip_exit(before);
}
