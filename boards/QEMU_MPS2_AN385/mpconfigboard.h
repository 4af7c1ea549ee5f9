// netsec QEMU image configuration (selected with MP_CONFIGFILE by mpconfigboard.mk).
// The qemu port has no board header, so this file takes the port's mpconfigport.h as it is and
// then changes only what a netsec board needs: the modules a real board has (time, select,
// asyncio, tls, hashes), and hooks into this board's C files.
#include "mpconfigport.h"

// Modules that the stock qemu port leaves out but every netsec board has.
#undef MICROPY_PY_TIME
#define MICROPY_PY_TIME (1)
#define MICROPY_PY_TIME_GMTIME_LOCALTIME_MKTIME (1)
#define MICROPY_PY_TIME_TIME_TIME_NS (1)
#define MICROPY_PY_TIME_INCLUDEFILE "modtime_rtc.c"
#undef MICROPY_PY_SELECT
#define MICROPY_PY_SELECT (1)
#undef MICROPY_PY_ASYNCIO
#define MICROPY_PY_ASYNCIO (1)
#undef MICROPY_PY_SYS_STDIO_BUFFER
#define MICROPY_PY_SYS_STDIO_BUFFER (1)
#define MICROPY_PY_OS_UNAME (1) // machine: "mps2-an385 with Cortex-M3", shown by the demo
#define MICROPY_PY_OS_URANDOM (1) // from the entropy source (modos_urandom.c)
#define MICROPY_PY_OS_INCLUDEFILE "modos_urandom.c"
#define MICROPY_PY_HASHLIB_MD5 (1)
#define MICROPY_PY_HASHLIB_SHA1 (1)

// mbedTLS allocates through MicroPython's tracked heap (MICROPY_MBEDTLS_CONFIG_BARE_METAL).
#define MICROPY_TRACKED_ALLOC (MICROPY_SSL_MBEDTLS)

// machine: the port's idle/reset plus machine.RTC (for `mpremote rtc` and `mpremote rtc --set`).
#undef MICROPY_PY_MACHINE_INCLUDEFILE
#define MICROPY_PY_MACHINE_INCLUDEFILE "modmachine_rtc.c"
#define MICROPY_PY_MACHINE_EXTRA_GLOBALS \
    { MP_ROM_QSTR(MP_QSTR_RTC), MP_ROM_PTR(&machine_rtc_type) }, \
    { MP_ROM_QSTR(MP_QSTR_busy_cycles), MP_ROM_PTR(&machine_busy_cycles_obj) }, \
    { MP_ROM_QSTR(MP_QSTR_timer_cycles), MP_ROM_PTR(&machine_timer_cycles_obj) },

// Sleep until input (a frame, a character) or the next deadline instead of spinning: QEMU then
// leaves the host CPU idle. ticks.c counts the time asleep (machine.busy_cycles()).
#define MICROPY_INTERNAL_WFE(TIMEOUT_MS) netsec_idle_wait(TIMEOUT_MS)
void netsec_idle_wait(mp_uint_t timeout_ms);

// Runs at every boot and soft reset (board.c).
#define MICROPY_PORT_INIT_FUNC netsec_board_init()
void netsec_board_init(void);

// The network: lwIP sockets (modlwip is the socket module) and network.LAN (network_lan.c).
#define MICROPY_PY_NETWORK (1)
#define MICROPY_PY_NETWORK_HOSTNAME_DEFAULT "netsec-mps2"
extern const struct _mp_obj_type_t network_lan_type;
#define MICROPY_PORT_NETWORK_INTERFACES \
    { MP_ROM_QSTR(MP_QSTR_LAN), MP_ROM_PTR(&network_lan_type) },
// lwIP runs whenever MicroPython waits (network_lan.c says why not from an interrupt).
#define MICROPY_INTERNAL_EVENT_HOOK netsec_lan_poll()
void netsec_lan_poll(void);
