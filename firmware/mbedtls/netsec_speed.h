// netsec's mbedTLS speed and memory settings, part of the profile (netsec_profile.h includes
// this last). Each setting was measured one at a time on the Cortex-M3 and M4 images with
// bench/variants.py; the README's "Speed and memory settings" table has the figures, including
// those of the settings tried and left out.
#ifndef NETSEC_MBEDTLS_SPEED_H
#define NETSEC_MBEDTLS_SPEED_H

// mbedTLS's assembly multiply-accumulate for bignum (bn_mul.h): UMLAL on Armv7-M, UMAAL on
// Armv7E-M (DSP), its Thumb-1 sequence on Armv6-M, x86-64 on the unix image. MicroPython's
// common configuration leaves it out; P-256 arithmetic is nearly all this inner loop.
#define MBEDTLS_HAVE_ASM

// Record buffers that can change size (16.4 KB in, 4.2 KB out at full size). Firmware patch
// 0051 uses this to give both back while an established session is idle (a keep-alive
// connection waiting for its next request) and take them again before the next record.
#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
// ... which mbedTLS allows only with the max_fragment_length extension (RFC 6066): a client
// that asks for smaller records also gets a session with smaller buffers.
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH

// PSA key slots for 64 keys instead of 32. A TLS 1.3 session holds about four, so 32 capped a
// server at 7 sessions at once, and the 8th handshake failed as if the peer had offered no
// cipher suite we accept. (MBEDTLS_PSA_KEY_STORE_DYNAMIC would grow the store in the heap, but
// PSA's state outlives a soft reset, which makes a new heap: its pointers would dangle.)
#define MBEDTLS_PSA_KEY_SLOT_COUNT 64

// AES with one 1 KB table per direction instead of four, the other three rotations of it
// computed: on Thumb-2 the rotation is free in the XOR's operand, so it costs no instructions
// (3 fewer per byte on the Cortex-M3) and saves 6 KB of flash.
#define MBEDTLS_AES_FEWER_TABLES

// PSA crypto works on the caller's buffers instead of copying each input into, and each output
// out of, a fresh heap block (a guard for buffers shared across a trust boundary, such as a
// TrustZone secure/non-secure split; here caller and PSA are one program). Each TLS record paid
// two 4 KB allocations, their clearing, two copies and two zeroisations: a third of AES-GCM's
// instructions per byte and over half of ChaCha20-Poly1305's.
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS

#if MICROPY_MBEDTLS_CONFIG_BARE_METAL
// The MicroPython heap behind mbedTLS, with freed small blocks kept for reuse (netsec_alloc.c):
// bignum temporaries are allocated and freed thousands of times per handshake.
#include <stddef.h>
void *netsec_mbedtls_calloc(size_t count, size_t size);
void netsec_mbedtls_free(void *ptr);
#undef MBEDTLS_PLATFORM_STD_CALLOC
#undef MBEDTLS_PLATFORM_STD_FREE
#define MBEDTLS_PLATFORM_STD_CALLOC netsec_mbedtls_calloc
#define MBEDTLS_PLATFORM_STD_FREE netsec_mbedtls_free
#endif

#endif // NETSEC_MBEDTLS_SPEED_H
