// lwIP configuration of the mps2 boards: MicroPython's common settings (NO_SYS, DHCP, DNS,
// mDNS) plus this board's memory budget. IPv4 only: QEMU's user network and the tests are IPv4.
#ifndef NETSEC_LWIPOPTS_H
#define NETSEC_LWIPOPTS_H

#include <stdint.h>

#define LWIP_IPV4 (1)
#define LWIP_IPV6 (0)

// TCP sockets at once: the server's sessions, its listeners, an SMTP client, and those closing.
#define MEMP_NUM_TCP_PCB (16)
#define MEMP_NUM_TCP_PCB_LISTEN (4)

// lwIP's own heap (pbufs for sent data, DHCP state) and its receive pool, both static (.bss),
// outside MicroPython's heap. Full-size segments: one 1460-byte segment per frame.
#define MEM_SIZE (16 * 1024)
#define TCP_MSS (1460)
#define TCP_WND (4 * TCP_MSS)
#define TCP_SND_BUF (4 * TCP_MSS)
#define MEMP_NUM_TCP_SEG (32)
#define PBUF_POOL_SIZE (12)

// lwIP's random numbers (TCP initial sequence numbers, DHCP and DNS ids) from the board's
// entropy source.
uint32_t netsec_lwip_rand(void);
#define LWIP_RAND() netsec_lwip_rand()

#include "extmod/lwip-include/lwipopts_common.h"

#endif
