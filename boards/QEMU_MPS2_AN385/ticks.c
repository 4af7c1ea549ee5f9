// Time and idle for the QEMU image, tickless: nothing interrupts a running guest on a schedule.
// CMSDK timer 0 counts the 25 MHz system clock down from 2^32 - 1 (its interrupt counts the
// wraps, one every 171.8 s); an idle guest sleeps in WFI until an interrupt (a received frame or
// character) or its earliest deadline (its caller's timeout, lwIP's next timer), which timer 1
// raises. Under `qemu -icount` this is virtual time, so ticks_us and ticks_cpu repeat exactly.
//
// machine.busy_cycles() counts what the guest ran in answer to input (frames, the console):
// not the time asleep, and not the wake-ups that only a deadline caused (lwIP's periodic timers,
// a task's sleep), whose number follows the host's clock while the guest waits for it
// (qemu -icount with sleep on). Those are counted apart (netsec_timer_cycles).
#include "py/mphal.h"
#include "py/runtime.h"
#include "mps2_an385.h"
#include "board.h"

#define CYCLES_PER_MS (MPS2_SYSCLK_HZ / 1000)
#define CYCLES_PER_US (MPS2_SYSCLK_HZ / 1000000)
// The longest sleep. Under `qemu -icount` with sleep off (rows 1-3 of the bench) an idle
// guest's clock jumps straight to its next deadline: with none at all, it would jump 171 s at
// a time (timer 0's wrap) and be carried years ahead while the host takes its time, past the
// certificates' dates. These wake-ups count as timer work, not busy.
#define SLEEP_MS_MAX (100u)

static volatile uint32_t timer0_wraps;

static void timer0_wrap_handler(void) {
    CMSDK_TIMER_INTCLEAR(CMSDK_TIMER0) = 1;
    timer0_wraps += 1;
}

// Timer 1 only wakes the CPU; the idle loop below looks at the clock itself.
static void timer1_deadline_handler(void) {
    CMSDK_TIMER_CTRL(CMSDK_TIMER1) = 0;
    CMSDK_TIMER_INTCLEAR(CMSDK_TIMER1) = 1;
}

void netsec_ticks_init(void) {
    netsec_set_irq_handler(TIMER0_IRQ, timer0_wrap_handler);
    netsec_set_irq_handler(TIMER1_IRQ, timer1_deadline_handler);
    CMSDK_TIMER_CTRL(CMSDK_TIMER0) = 0;
    CMSDK_TIMER_RELOAD(CMSDK_TIMER0) = 0xffffffffu;
    CMSDK_TIMER_VALUE(CMSDK_TIMER0) = 0xffffffffu;
    CMSDK_TIMER_INTCLEAR(CMSDK_TIMER0) = 1;
    CMSDK_TIMER_CTRL(CMSDK_TIMER0) = CMSDK_TIMER_CTRL_EN | CMSDK_TIMER_CTRL_IRQEN;
    CMSDK_TIMER_CTRL(CMSDK_TIMER1) = 0;
    NVIC_ISER0 = (1u << TIMER0_IRQ) | (1u << TIMER1_IRQ);
}

// System clock cycles since boot.
static uint64_t cycles_since_boot(void) {
    uint32_t primask = mps2_irq_disable();
    uint32_t wraps = timer0_wraps;
    uint32_t value = CMSDK_TIMER_VALUE(CMSDK_TIMER0);
    if (CMSDK_TIMER_INTSTATUS(CMSDK_TIMER0)) {
        // It wrapped and its handler has not run yet (interrupts are masked): read again, now
        // surely after the reload, unless it was read at zero, just before it.
        value = CMSDK_TIMER_VALUE(CMSDK_TIMER0);
        if (value >= 0x80000000u) {
            wraps += 1;
        }
    }
    mps2_irq_restore(primask);
    return ((uint64_t)wraps << 32) | (0xffffffffu - value);
}

// n / d for d < 2^16 by long division in 16-bit digits: three 32-bit divisions, the same
// instructions whatever n. (libgcc's 64-bit division takes longer or shorter by the operands'
// values, so the instructions a request runs would follow the clock.)
uint64_t netsec_div_u64_u16(uint64_t n, uint32_t d) {
    uint32_t high = (uint32_t)(n >> 32);
    uint32_t low = (uint32_t)n;
    uint32_t q2 = high / d;
    uint32_t digits = ((high - q2 * d) << 16) | (low >> 16);
    uint32_t q1 = digits / d;
    digits = ((digits - q1 * d) << 16) | (low & 0xffffu);
    uint32_t q0 = digits / d;
    return ((uint64_t)q2 << 32) | (q1 << 16) | q0;
}

uint64_t netsec_ticks_us64(void) {
    return netsec_div_u64_u16(cycles_since_boot(), CYCLES_PER_US);
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)netsec_div_u64_u16(cycles_since_boot(), CYCLES_PER_MS);
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)netsec_ticks_us64();
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return (mp_uint_t)cycles_since_boot();
}

// Where the cycles went: asleep, awake after a deadline alone woke the guest, and the rest.
static uint64_t idle_cycles;
static uint64_t timer_cycles;
static uint64_t awake_since;     // the last wake-up
static bool awake_for_deadline;  // ... was a deadline's, and no input came since
static volatile bool input_came; // set by the input interrupts and by the poll that took a frame

// Timer cycles so far, the current wake-up's included if only a deadline caused it.
static uint64_t timer_cycles_until(uint64_t now) {
    return timer_cycles + (awake_for_deadline && !input_came ? now - awake_since : 0);
}

void netsec_wake_for_input(void) {
    input_came = true;
}

// Wait for timer 0's next tick and leave at a fixed number of instructions after it. A wake-up
// comes at a virtual time that follows the host's (qemu -icount with sleep on), anywhere
// within a 40-instruction tick; from here on the instruction stream is in step with the ticks
// again, so that the cycle counts of what follows repeat exactly. Each instruction below
// counts: the spin reads the counter every 3 instructions, so the read that sees it change is
// p = 0, 1 or 2 instructions after the tick; 38 + p and 39 + p instructions after that tick,
// two reads straddle the next one and tell p, and the three paths differ in length by p, to
// end 47 instructions after the first tick. Thumb-1 only, for the Armv6-M image too.
static void align_to_tick(void) {
    uint32_t seen, changed, late, later;
    __asm volatile (
        "    ldr %[seen], [%[value]]\n"
        "1:  ldr %[changed], [%[value]]\n"
        "    cmp %[changed], %[seen]\n"
        "    beq 1b\n"
        "    .rept 35\n"
        "    nop\n"
        "    .endr\n"
        "    ldr %[late], [%[value]]\n"
        "    ldr %[later], [%[value]]\n"
        "    cmp %[late], %[changed]\n"
        "    bne 2f\n"
        "    cmp %[later], %[changed]\n"
        "    bne 3f\n"
        "    nop\n" // p = 0
        "    nop\n"
        "    b 4f\n"
        "2:  nop\n" // p = 2
        "    nop\n"
        "    b 4f\n"
        "3:  nop\n" // p = 1
        "    b 4f\n"
        "4:\n"
        : [seen] "=&l" (seen), [changed] "=&l" (changed), [late] "=&l" (late), [later] "=&l" (later)
        : [value] "l" (&CMSDK_TIMER_VALUE(CMSDK_TIMER0))
        : "cc", "memory");
}

// Sleep until input or `timeout_ms` (-1: none) or lwIP's next timer, whichever comes first.
void netsec_idle_wait(mp_uint_t timeout_ms) {
    uint64_t start = cycles_since_boot();
    timer_cycles = timer_cycles_until(start);
    if (netsec_lan_timers()) {
        // lwIP's timers ran (deadline work, counted apart): back to the caller, which looks
        // again at what they changed.
        awake_since = cycles_since_boot();
        timer_cycles += awake_since - start;
        awake_for_deadline = true;
        return;
    }
    bool deadline_only = true;
    uint32_t sleep_ms = netsec_lan_sleep_ms();
    if (timeout_ms < sleep_ms) {
        sleep_ms = timeout_ms;
    }
    if (sleep_ms > SLEEP_MS_MAX) {
        sleep_ms = SLEEP_MS_MAX;
    }
    uint64_t deadline = start + (uint64_t)sleep_ms * CYCLES_PER_MS;
    uint32_t primask = mps2_irq_disable();
    for (;;) {
        if (input_came) {
            deadline_only = false;
            break;
        }
        uint64_t now = cycles_since_boot();
        if (now >= deadline) {
            break;
        }
        CMSDK_TIMER_VALUE(CMSDK_TIMER1) = (uint32_t)(deadline - now);
        CMSDK_TIMER_RELOAD(CMSDK_TIMER1) = (uint32_t)(deadline - now);
        CMSDK_TIMER_INTCLEAR(CMSDK_TIMER1) = 1;
        CMSDK_TIMER_CTRL(CMSDK_TIMER1) = CMSDK_TIMER_CTRL_EN | CMSDK_TIMER_CTRL_IRQEN;
        __asm volatile ("wfi");
        CMSDK_TIMER_CTRL(CMSDK_TIMER1) = 0;
        // Let the handlers of whatever woke the CPU run, then look again.
        mps2_irq_restore(0);
        mps2_irq_disable();
    }
    align_to_tick(); // with interrupts masked: the handlers of what woke the CPU run after it
    mps2_irq_restore(primask);
    input_came = false;
    awake_since = cycles_since_boot();
    idle_cycles += awake_since - start;
    awake_for_deadline = deadline_only;
}

uint64_t netsec_busy_cycles(void) {
    uint64_t now = cycles_since_boot();
    return now - idle_cycles - timer_cycles_until(now);
}

uint64_t netsec_timer_cycles(void) {
    return timer_cycles_until(cycles_since_boot());
}

void mp_hal_delay_us(mp_uint_t us) {
    mp_uint_t start = mp_hal_ticks_us();
    while (mp_hal_ticks_us() - start < us) {
    }
}

void mp_hal_delay_ms(mp_uint_t ms) {
    // At least `ms`, measured in microseconds; sleep meanwhile and let pending events
    // (e.g. Ctrl-C) run.
    uint64_t end = netsec_ticks_us64() + (uint64_t)ms * 1000;
    uint64_t now;
    while ((now = netsec_ticks_us64()) < end) {
        mp_event_wait_ms((mp_uint_t)netsec_div_u64_u16(end - now + 999, 1000));
    }
}
