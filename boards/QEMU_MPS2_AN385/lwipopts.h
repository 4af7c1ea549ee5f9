// lwIP configuration of the mps2 boards: MicroPython's common settings (NO_SYS, DHCP, DNS,
// mDNS) plus this board's memory budget. IPv4 only: QEMU's user network and the tests are IPv4.
#ifndef NETSEC_LWIPOPTS_H
#define NETSEC_LWIPOPTS_H

#include <stddef.h>
#include <stdint.h>

#define LWIP_IPV4 (1)
#define LWIP_IPV6 (0)

// TCP sockets at once: the server's sessions, its listeners, an SMTP client, and those closing.
#define MEMP_NUM_TCP_PCB (16)
#define MEMP_NUM_TCP_PCB_LISTEN (4)

// lwIP's buffers (frames received, data it sends) live in MicroPython's heap, which TLS draws
// on too (lwip_heap.c); its control blocks stay in its static pools, fixed in number. At most
// NETSEC_LWIP_RX_BYTES of received frames and NETSEC_LWIP_OWN_BYTES of its own buffers at once,
// what its static receive pool and heap held before.
#define MEM_CUSTOM_ALLOCATOR (1)
#define MEM_CUSTOM_MALLOC netsec_lwip_malloc
#define MEM_CUSTOM_CALLOC netsec_lwip_calloc
#define MEM_CUSTOM_FREE netsec_lwip_free
void *netsec_lwip_malloc(size_t size);
void *netsec_lwip_calloc(size_t count, size_t size);
void netsec_lwip_free(void *ptr);
#define NETSEC_LWIP_RX_BYTES (18 * 1024)
#define NETSEC_LWIP_OWN_BYTES (16 * 1024)
#define MEM_SIZE (NETSEC_LWIP_OWN_BYTES) // unused by the allocator; keeps the sizes below
#define PBUF_POOL_SIZE (0) // the driver receives into heap buffers
// Fragments are dropped, not held for reassembly: TCP segments fit one frame (below), and
// reassembly would hold buffers that a soft reset cannot take back.
#define IP_REASSEMBLY (0)
// Full-size segments: one 1460-byte segment per frame.
#define TCP_MSS (1460)
#define TCP_WND (4 * TCP_MSS)
#define TCP_SND_BUF (4 * TCP_MSS)
#define MEMP_NUM_TCP_SEG (32)

// lwIP's random numbers (TCP initial sequence numbers, DHCP and DNS ids) from the board's
// entropy source.
uint32_t netsec_lwip_rand(void);
#define LWIP_RAND() netsec_lwip_rand()

#include "extmod/lwip-include/lwipopts_common.h"

#endif
