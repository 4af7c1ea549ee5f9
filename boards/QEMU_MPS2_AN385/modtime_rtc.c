// Never compiled on its own: extmod/modtime.c includes it (MICROPY_PY_TIME_INCLUDEFILE) for the
// port's part of the time module. Like the boards MicroPython runs on, this port counts seconds
// from 2000-01-01; the clock underneath (rtc.c) is UTC.
#include "shared/timeutils/timeutils.h"
#include "board.h"

static mp_uint_t seconds_since_2000(void) {
    return (mp_uint_t)(netsec_whole_seconds(netsec_rtc_unix_us()) - TIMEUTILS_SECONDS_1970_TO_2000);
}

// time.localtime() and time.gmtime() with no argument: the clock has no time zone.
static mp_obj_t mp_time_localtime_get(void) {
    timeutils_struct_time_t tm;
    timeutils_seconds_since_2000_to_struct_time(seconds_since_2000(), &tm);
    mp_obj_t fields[8] = {
        mp_obj_new_int(tm.tm_year),
        mp_obj_new_int(tm.tm_mon),
        mp_obj_new_int(tm.tm_mday),
        mp_obj_new_int(tm.tm_hour),
        mp_obj_new_int(tm.tm_min),
        mp_obj_new_int(tm.tm_sec),
        mp_obj_new_int(tm.tm_wday),
        mp_obj_new_int(tm.tm_yday),
    };
    return mp_obj_new_tuple(8, fields);
}

static mp_obj_t mp_time_time_get(void) {
    return mp_obj_new_int_from_uint(seconds_since_2000());
}
