// Ticks for the QEMU image: SysTick interrupts every millisecond; the counter's current value
// gives the microseconds in between. Under `qemu -icount` this is virtual time, so benchmarks
// measured with ticks_us repeat exactly.
#include "py/mphal.h"
#include "py/runtime.h"
#include "mps2_an385.h"
#include "board.h"

#define CYCLES_PER_MS (MPS2_SYSCLK_HZ / 1000)
#define CYCLES_PER_US (MPS2_SYSCLK_HZ / 1000000)

static volatile uint64_t ms_since_boot;

void netsec_systick_handler(void) {
    ms_since_boot += 1;
}

void netsec_ticks_init(void) {
    SYST_RVR = CYCLES_PER_MS - 1;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_CLKSOURCE_CPU | SYST_CSR_TICKINT | SYST_CSR_ENABLE;
}

// Milliseconds and the cycles into the current millisecond, read consistently.
static void ticks_now(uint64_t *ms, uint32_t *cycles) {
    uint32_t primask = mps2_irq_disable();
    uint64_t whole_ms = ms_since_boot;
    uint32_t count = SYST_CVR;
    if (SCB_ICSR & SCB_ICSR_PENDSTSET) {
        // The counter wrapped but the handler has not run yet (interrupts are masked):
        // count that millisecond, and read the counter again, now surely after the wrap.
        whole_ms += 1;
        count = SYST_CVR;
    }
    mps2_irq_restore(primask);
    *ms = whole_ms;
    *cycles = CYCLES_PER_MS - 1 - count;
}

uint64_t netsec_ticks_us64(void) {
    uint64_t ms;
    uint32_t cycles;
    ticks_now(&ms, &cycles);
    return ms * 1000 + cycles / CYCLES_PER_US;
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)ms_since_boot; // only the low word counts, and it is always read whole
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)netsec_ticks_us64();
}

static uint64_t cycles_since_boot(void) {
    uint64_t ms;
    uint32_t cycles;
    ticks_now(&ms, &cycles);
    return ms * CYCLES_PER_MS + cycles;
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)cycles_since_boot();
}

// System clock cycles spent asleep in WFI since boot. Benchmarks subtract them: under
// `qemu -icount` the clock jumps while the guest sleeps, by however long the host took to
// send the next packet, so only the cycles spent running repeat.
static uint64_t idle_cycles;

void netsec_idle_wait(void) {
    uint64_t before = cycles_since_boot();
    __asm volatile ("wfi");
    idle_cycles += cycles_since_boot() - before;
}

uint64_t netsec_busy_cycles(void) {
    return cycles_since_boot() - idle_cycles;
}

void mp_hal_delay_us(mp_uint_t us) {
    mp_uint_t start = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - start < us) {
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    // At least `ms`, measured in microseconds; sleep between ticks and let pending events
    // (e.g. Ctrl-C) run meanwhile.
    uint64_t end = netsec_ticks_us64() + (uint64_t)ms * 1000;
    uint64_t now;
    while ((now = netsec_ticks_us64()) < end) {
        mp_event_wait_ms((mp_uint_t)((end - now + 999) / 1000));
    }
}
