// lwIP's compiler and platform definitions for the mps2 boards (GCC, little-endian Cortex-M).
// Byte order comes from newlib's <machine/endian.h>; the checksum algorithm from lwipopts.h.
#ifndef NETSEC_LWIP_ARCH_CC_H
#define NETSEC_LWIP_ARCH_CC_H

#include <stdint.h>

#define LWIP_NO_INTTYPES_H (1)
#define LWIP_NO_CTYPE_H (1) // lwIP's own isdigit() etc.: the image links no libc
#define U16_F "hu"
#define S16_F "hd"
#define X16_F "hx"
#define U32_F "u"
#define S32_F "d"
#define X32_F "x"
#define SZT_F "u"

// lwIP's diagnostics and assertions print nothing on this board.
#define LWIP_PLATFORM_DIAG(x)
#define LWIP_PLATFORM_ASSERT(x)

#define PACK_STRUCT_STRUCT __attribute__((packed))

#endif
