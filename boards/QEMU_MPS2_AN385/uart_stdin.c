// Console input for the QEMU image. The UART0 receive interrupt moves characters into a ring
// buffer, which gives the port what it lacks: Ctrl-C interrupts running code, select/poll can
// see pending input (so asyncio can wait on stdin), and a waiting REPL sleeps in WFI instead of
// spinning the host CPU. Output stays with the port (mphalport.c).
//
// mpconfigboard.mk links the port's mp_hal_stdin_rx_chr and mp_hal_stdio_poll callers to the
// __wrap_ functions here (ld --wrap), because the port defines both and a board cannot.
#include "py/mphal.h"
#include "py/ringbuf.h"
#include "py/runtime.h"
#include "py/stream.h"
#include "shared/runtime/interrupt_char.h"
#include "mps2_an385.h"
#include "board.h"

static uint8_t rx_bytes[256];
static ringbuf_t rx_ring = { rx_bytes, sizeof(rx_bytes), 0, 0 };

// Move what the UART holds into the ring. When the ring is full the character stays in the
// UART and QEMU holds back the rest of the host's input: nothing is lost. Call with interrupts
// masked, or from the handler.
static void uart_drain(void) {
    while ((UART0_STATE & UART_STATE_RXFULL) && ringbuf_free(&rx_ring) > 0) {
        int c = UART0_DATA & 0xff;
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
        } else {
            ringbuf_put(&rx_ring, c);
        }
    }
}

static void uart0_rx_handler(void) {
    UART0_INTSTATUS = UART_INT_RX;
    uart_drain();
    netsec_wake_for_input();
}

void netsec_uart_stdin_init(void) {
    netsec_set_irq_handler(UART0_RX_IRQ, uart0_rx_handler);
    UART0_CTRL |= UART_CTRL_RX_INTEN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
}

static int rx_take(void) {
    uint32_t primask = mps2_irq_disable();
    uart_drain(); // a character may wait in the UART since the ring was last full
    int c = ringbuf_get(&rx_ring);
    mps2_irq_restore(primask);
    return c;
}

int __wrap_mp_hal_stdin_rx_chr(void) {
    for (;;) {
        int c = rx_take();
        if (c >= 0) {
            return c;
        }
        mp_event_wait_indefinite();
    }
}

uintptr_t __wrap_mp_hal_stdio_poll(uintptr_t poll_flags) {
    uintptr_t ready = 0;
    if (poll_flags & MP_STREAM_POLL_RD) {
        uint32_t primask = mps2_irq_disable();
        uart_drain();
        if (ringbuf_avail(&rx_ring) > 0) {
            ready |= MP_STREAM_POLL_RD;
        }
        mps2_irq_restore(primask);
    }
    // Writes never refuse: the port's output waits for the UART itself.
    ready |= poll_flags & MP_STREAM_POLL_WR;
    return ready;
}
