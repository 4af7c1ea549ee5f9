// What this board's C files offer each other.
#ifndef NETSEC_BOARD_H
#define NETSEC_BOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// ticks.c: a 1 ms SysTick, the base of ticks_ms/us and of the real-time clock.
void netsec_ticks_init(void);
void netsec_systick_handler(void);
uint64_t netsec_ticks_us64(void);
// System clock cycles since boot not spent asleep in WFI (machine.busy_cycles()).
uint64_t netsec_busy_cycles(void);

// uart_stdin.c: console input through the UART0 receive interrupt.
void netsec_uart_stdin_init(void);
void netsec_uart0_rx_handler(void);

// rtc.c: UTC wall-clock time, read from the host at boot, settable.
void netsec_rtc_init(void);
uint64_t netsec_rtc_unix_us(void);
void netsec_rtc_set_unix_us(uint64_t unix_us);

// ramdisk.c: the littlefs filesystem at "/".
void netsec_ramdisk_mount(bool format);

// network_lan.c: lwIP and network.LAN on the LAN9118; the poll is MicroPython's event hook.
void netsec_lan_init(bool cold_boot);
void netsec_lan_poll(void);

// test_only_insecure_entropy.c (on QEMU): the board's entropy source, which mbedTLS, lwIP
// (network_lan.c) and os.urandom (modos_urandom.c) draw from.
void netsec_test_only_entropy_warning(void);
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen);

#endif
