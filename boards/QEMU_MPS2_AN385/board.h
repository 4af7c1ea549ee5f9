// What this board's C files offer each other.
#ifndef NETSEC_BOARD_H
#define NETSEC_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// board.c: put an interrupt handler into the vector table (irq: 0 for IRQ 0).
void netsec_set_irq_handler(int irq, void (*handler)(void));

// ticks.c: tickless time (the base of ticks_ms/us and of the real-time clock) and idle.
void netsec_ticks_init(void);
uint64_t netsec_ticks_us64(void);
// n / d for d < 2^16, in the same instructions whatever n (time conversions; see ticks.c).
uint64_t netsec_div_u64_u16(uint64_t n, uint32_t d);
// Wake the idle loop: input came (an interrupt handler, or a poll that took a frame).
void netsec_wake_for_input(void);
// System clock cycles since boot spent running in answer to input (machine.busy_cycles()),
// and those spent on work only a deadline woke the guest for (lwIP's timers, sleeps).
uint64_t netsec_busy_cycles(void);
uint64_t netsec_timer_cycles(void);

// uart_stdin.c: console input through the UART0 receive interrupt.
void netsec_uart_stdin_init(void);

// rtc.c: UTC wall-clock time, read from the host at boot, settable.
void netsec_rtc_init(void);
uint64_t netsec_rtc_unix_us(void);
uint64_t netsec_whole_seconds(uint64_t us); // us / 10^6, in constant time (see ticks.c)
void netsec_rtc_set_unix_us(uint64_t unix_us);

// ramdisk.c: the littlefs filesystem at "/".
void netsec_ramdisk_mount(bool format);

// network_lan.c: lwIP and network.LAN on the LAN9118; the poll is MicroPython's event hook.
void netsec_lan_init(bool cold_boot);
void netsec_lan_poll(void);
// For the idle loop: run lwIP's timers if one is due (true if so); milliseconds until the next.
bool netsec_lan_timers(void);
uint32_t netsec_lan_sleep_ms(void);

// lwip_heap.c: lwIP's buffers in MicroPython's heap. What lwIP is doing decides how an
// allocation may be served: for a Python call (it may collect garbage), receiving a frame
// (the received-frame budget), or walking its own lists (it must not collect).
typedef enum {
    NETSEC_LWIP_PYTHON,
    NETSEC_LWIP_RECEIVING,
    NETSEC_LWIP_CORE,
} netsec_lwip_context_t;
netsec_lwip_context_t netsec_lwip_enter(netsec_lwip_context_t now); // returns the one before
void netsec_lwip_exit(netsec_lwip_context_t before);
// A garbage collection an allocation inside lwIP had to forgo, now that lwIP is idle.
void netsec_lwip_collect_if_wanted(void);
// Bytes of received frames held, bytes of lwIP's own buffers, frames dropped for want of memory.
void netsec_lwip_heap_counts(size_t counts[3]);

// firmware/mbedtls/netsec_alloc.c: mbedTLS's allocator forgets the blocks it kept.
void netsec_mbedtls_alloc_reset(void);

// test_only_insecure_entropy.c (on QEMU): the board's entropy source, which mbedTLS, lwIP
// (network_lan.c) and os.urandom (modos_urandom.c) draw from.
void netsec_test_only_entropy_warning(void);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

#endif
