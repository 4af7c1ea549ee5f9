// The real-time clock of the QEMU image, in UTC. At power-on it reads the host's clock through
// ARM semihosting (SYS_TIME: seconds since 1970; QEMU must run with
// -semihosting-config enable=on,target=native) and from then on counts with the ticks, so the
// clock is right at boot and certificate dates check. machine.RTC().datetime(...) sets it.
#include "py/mphal.h"
#include "shared/timeutils/timeutils.h"
#include "board.h"

#define SEMIHOSTING_SYS_TIME (0x11)

// The wall-clock time, in microseconds since 1970, when the tick counter read zero.
static uint64_t unix_us_at_tick_zero;

static uint32_t host_unix_seconds(void) {
    register uint32_t op __asm__ ("r0") = SEMIHOSTING_SYS_TIME;
    register uint32_t arg __asm__ ("r1") = 0;
    __asm volatile ("bkpt 0xab" : "+r" (op) : "r" (arg) : "memory");
    return op;
}

void netsec_rtc_init(void) {
    netsec_rtc_set_unix_us((uint64_t)host_unix_seconds() * 1000000);
}

uint64_t netsec_rtc_unix_us(void) {
    return unix_us_at_tick_zero + netsec_ticks_us64();
}

uint64_t netsec_whole_seconds(uint64_t us) {
    return netsec_div_u64_u16(netsec_div_u64_u16(us, 1000), 1000);
}

void netsec_rtc_set_unix_us(uint64_t unix_us) {
    unix_us_at_tick_zero = unix_us - netsec_ticks_us64();
}

// Nanoseconds since 1970 whatever the port's epoch: what time.time_ns() and littlefs file
// times expect.
uint64_t mp_hal_time_ns(void) {
    return netsec_rtc_unix_us() * 1000;
}
