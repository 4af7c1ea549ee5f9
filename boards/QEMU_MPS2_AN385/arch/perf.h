// lwIP's performance hooks: unused on the mps2 boards.
#ifndef NETSEC_LWIP_ARCH_PERF_H
#define NETSEC_LWIP_ARCH_PERF_H
#define PERF_START
#define PERF_STOP(x)
#endif
