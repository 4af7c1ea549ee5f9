// Board start-up for the netsec QEMU image. netsec_board_init() runs from mp_init() at every
// boot and soft reset (MICROPY_PORT_INIT_FUNC): the hardware is set up once, the filesystem is
// mounted each time (mp_init forgets mounts), and the entropy warning is printed each time.
#include "py/mpconfig.h"
#include "mps2_an385.h"
#include "board.h"

// The port's startup.c has a vector table with the 16 system exceptions only and fatal
// handlers for all of them. This board needs interrupts (timers, UART0 receive, the LAN9118),
// so it runs from a copy in RAM (VTOR needs the table aligned to its size rounded up to a
// power of 2), which netsec_set_irq_handler() fills in.
extern const uint32_t isr_vector[];
extern void Default_Handler(void);
static uint32_t vector_table[EXC_IRQ0 + MPS2_NUM_IRQS] __attribute__((aligned(256)));

static void install_vector_table(void) {
    for (int i = 0; i < EXC_IRQ0; ++i) {
        vector_table[i] = isr_vector[i];
    }
    for (int i = EXC_IRQ0; i < EXC_IRQ0 + MPS2_NUM_IRQS; ++i) {
        vector_table[i] = (uint32_t)&Default_Handler;
    }
    __asm volatile ("dsb" : : : "memory");
    SCB_VTOR = (uint32_t)vector_table;
    __asm volatile ("dsb\n isb" : : : "memory");
}

void netsec_set_irq_handler(int irq, void (*handler)(void)) {
    vector_table[EXC_IRQ0 + irq] = (uint32_t)handler;
}

void netsec_board_init(void) {
    static bool hardware_ready = false;
    bool cold_boot = !hardware_ready;
    if (cold_boot) {
        install_vector_table();
        netsec_ticks_init();
        netsec_uart_stdin_init();
        netsec_rtc_init();
        hardware_ready = true;
    }
    // The heap was swept: the blocks mbedTLS's allocator kept are gone, and with them
    // MicroPython's list of tracked allocations. First, before lwIP allocates again.
    netsec_mbedtls_alloc_reset();
    // The RAM disk starts zeroed at power-on and keeps its files over a soft reset.
    netsec_ramdisk_mount(cold_boot);
    netsec_lan_init(cold_boot);
    netsec_test_only_entropy_warning();
}
