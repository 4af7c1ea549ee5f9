// Time for mbedTLS on the QEMU image (see mbedtls_config_board.h): seconds since 1970 and the
// UTC calendar, from the board's clock (rtc.c). mbedTLS checks certificate dates with these;
// its epoch is 1970, not the port's 2000.
#include <string.h>

#include "py/obj.h"
#include "mbedtls/platform_time.h"
#include "mbedtls/platform_util.h"
#include "shared/timeutils/timeutils.h"
#include "board.h"

time_t netsec_mbedtls_time(time_t *timer) {
    time_t now = (time_t)netsec_whole_seconds(netsec_rtc_unix_us());
    if (timer != NULL) {
        *timer = now;
    }
    return now;
}

mbedtls_ms_time_t mbedtls_ms_time(void) {
    return (mbedtls_ms_time_t)netsec_div_u64_u16(netsec_rtc_unix_us(), 1000);
}

// The calendar covers 2000 to 2136 (32-bit seconds since 2000). A time outside is an error,
// which mbedTLS treats as "cannot tell": certificates then fail their date checks.
struct tm *mbedtls_platform_gmtime_r(const mbedtls_time_t *tt, struct tm *tm_buf) {
    int64_t since_2000 = (int64_t)*tt - (int64_t)TIMEUTILS_SECONDS_1970_TO_2000;
    if (since_2000 < 0 || since_2000 > (int64_t)UINT32_MAX) {
        return NULL;
    }
    timeutils_struct_time_t tm;
    timeutils_seconds_since_2000_to_struct_time((mp_uint_t)since_2000, &tm);
    memset(tm_buf, 0, sizeof(*tm_buf));
    tm_buf->tm_year = tm.tm_year - 1900;
    tm_buf->tm_mon = tm.tm_mon - 1;
    tm_buf->tm_mday = tm.tm_mday;
    tm_buf->tm_hour = tm.tm_hour;
    tm_buf->tm_min = tm.tm_min;
    tm_buf->tm_sec = tm.tm_sec;
    tm_buf->tm_wday = (tm.tm_wday + 1) % 7; // Monday is 0 here, Sunday is 0 in struct tm
    tm_buf->tm_yday = tm.tm_yday - 1;
    return tm_buf;
}
