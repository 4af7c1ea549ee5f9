// Never compiled on its own: extmod/modmachine.c includes it (MICROPY_PY_MACHINE_INCLUDEFILE).
// The port's machine functions, plus machine.RTC: datetime() reads the clock (rtc.c) and
// datetime((year, month, day, weekday, hours, minutes, seconds, microseconds)) sets it, which
// is what `mpremote rtc` and `mpremote rtc --set` use. The weekday given is ignored (it follows
// from the date); the clock is UTC and starts from the year 2000.
#include "ports/qemu/modmachine.c"

#include "shared/timeutils/timeutils.h"
#include "board.h"

// machine.busy_cycles(): system clock cycles (MPS2_SYSCLK_HZ) since boot spent running in answer
// to input; machine.timer_cycles(): those spent on what only a deadline woke the guest for
// (lwIP's timers, sleeps); neither counts the time asleep (ticks.c). Ints; for benchmarks
// under `qemu -icount`.
static mp_obj_t machine_busy_cycles(void) {
    return mp_obj_new_int_from_ull(netsec_busy_cycles());
}
static MP_DEFINE_CONST_FUN_OBJ_0(machine_busy_cycles_obj, machine_busy_cycles);

static mp_obj_t machine_timer_cycles(void) {
    return mp_obj_new_int_from_ull(netsec_timer_cycles());
}
static MP_DEFINE_CONST_FUN_OBJ_0(machine_timer_cycles_obj, machine_timer_cycles);

static const mp_obj_base_t machine_rtc_obj;

static mp_obj_t machine_rtc_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    return MP_OBJ_FROM_PTR(&machine_rtc_obj); // one clock, one object
}

static mp_obj_t machine_rtc_read(void) {
    uint64_t unix_us = netsec_rtc_unix_us();
    uint64_t unix_s = netsec_whole_seconds(unix_us);
    timeutils_struct_time_t tm;
    timeutils_seconds_since_2000_to_struct_time((mp_uint_t)(unix_s - TIMEUTILS_SECONDS_1970_TO_2000), &tm);
    mp_obj_t fields[8] = {
        mp_obj_new_int(tm.tm_year),
        mp_obj_new_int(tm.tm_mon),
        mp_obj_new_int(tm.tm_mday),
        mp_obj_new_int(tm.tm_wday),
        mp_obj_new_int(tm.tm_hour),
        mp_obj_new_int(tm.tm_min),
        mp_obj_new_int(tm.tm_sec),
        mp_obj_new_int((mp_int_t)(unix_us - unix_s * 1000000)),
    };
    return mp_obj_new_tuple(8, fields);
}

static mp_int_t datetime_field(mp_obj_t value, const char *name, mp_int_t low, mp_int_t high) {
    mp_int_t v = mp_obj_get_int(value);
    if (v < low || v > high) {
        mp_raise_msg_varg(&mp_type_ValueError,
            MP_ERROR_TEXT("RTC.datetime: %s must be %d..%d, not %d"), name, (int)low, (int)high, (int)v);
    }
    return v;
}

static void machine_rtc_write(mp_obj_t datetime) {
    mp_obj_t *items;
    mp_obj_get_array_fixed_n(datetime, 8, &items);
    mp_int_t year = datetime_field(items[0], "year", 2000, 2135);
    mp_int_t month = datetime_field(items[1], "month", 1, 12);
    mp_int_t day = datetime_field(items[2], "day", 1, timeutils_days_in_month(year, month));
    mp_int_t hours = datetime_field(items[4], "hours", 0, 23);
    mp_int_t minutes = datetime_field(items[5], "minutes", 0, 59);
    mp_int_t seconds = datetime_field(items[6], "seconds", 0, 59);
    mp_int_t microseconds = datetime_field(items[7], "microseconds", 0, 999999);
    uint64_t unix_seconds = timeutils_seconds_since_2000(year, month, day, hours, minutes, seconds)
        + TIMEUTILS_SECONDS_1970_TO_2000;
    netsec_rtc_set_unix_us(unix_seconds * 1000000 + microseconds);
}

static mp_obj_t machine_rtc_datetime(size_t n_args, const mp_obj_t *args) {
    if (n_args == 1) {
        return machine_rtc_read();
    }
    machine_rtc_write(args[1]);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(machine_rtc_datetime_obj, 1, 2, machine_rtc_datetime);

static const mp_rom_map_elem_t machine_rtc_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_datetime), MP_ROM_PTR(&machine_rtc_datetime_obj) },
};
static MP_DEFINE_CONST_DICT(machine_rtc_locals_dict, machine_rtc_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    machine_rtc_type,
    MP_QSTR_RTC,
    MP_TYPE_FLAG_NONE,
    make_new, machine_rtc_make_new,
    locals_dict, &machine_rtc_locals_dict
    );

static const mp_obj_base_t machine_rtc_obj = { &machine_rtc_type };
