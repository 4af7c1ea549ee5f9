// Never compiled on its own: extmod/modos.c includes it (MICROPY_PY_OS_INCLUDEFILE).
// os.urandom(n) from the board's entropy source, the one mbedTLS seeds from
// (test_only_insecure_entropy.c on QEMU): netsec draws SNTP nonces, password salts and MIME
// boundaries from it, as on boards with a hardware random number generator.
#include "py/runtime.h"
#include "board.h"

static mp_obj_t mp_os_urandom(mp_obj_t num) {
    mp_int_t n = mp_obj_get_int(num);
    if (n < 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("os.urandom: the length must be 0 or more"));
    }
    vstr_t vstr;
    vstr_init_len(&vstr, n);
    size_t got;
    mbedtls_hardware_poll(NULL, (unsigned char *)vstr.buf, n, &got);
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_1(mp_os_urandom_obj, mp_os_urandom);
