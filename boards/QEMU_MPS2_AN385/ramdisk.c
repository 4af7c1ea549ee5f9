// The filesystem of the QEMU image: littlefs on a RAM disk, mounted at "/" at every boot, so
// `mpremote fs cp/ls` and file-based code work as on a board's flash. The disk is static RAM
// outside the MicroPython heap: files survive a soft reset (mpremote does many) but not a
// restart of QEMU. It is a block device like a board's flash, with readblocks, writeblocks
// and ioctl, but it is not exported: the mount is all anyone needs.
#include <string.h>

#include "py/mperrno.h"
#include "py/nlr.h"
#include "py/runtime.h"
#include "extmod/vfs.h"
#include "extmod/vfs_lfs.h"
#include "board.h"

#define RAMDISK_BLOCK_SIZE (1024)
#define RAMDISK_BLOCK_COUNT (512) // 512 KB: certificates, web files, the portable tests

static uint8_t ramdisk[RAMDISK_BLOCK_COUNT * RAMDISK_BLOCK_SIZE] __attribute__((aligned(4)));

// The bytes of block `block_num`, from `offset`, for `len` bytes; OSError(EIO) if outside.
static uint8_t *ramdisk_span(mp_obj_t block_num, mp_obj_t offset, size_t len) {
    mp_int_t block = mp_obj_get_int(block_num);
    mp_int_t within = offset == MP_OBJ_NULL ? 0 : mp_obj_get_int(offset);
    if (block < 0 || block >= RAMDISK_BLOCK_COUNT || within < 0 || within > RAMDISK_BLOCK_SIZE
        || (size_t)(block * RAMDISK_BLOCK_SIZE + within) + len > sizeof(ramdisk)) {
        mp_raise_OSError(MP_EIO);
    }
    return &ramdisk[block * RAMDISK_BLOCK_SIZE + within];
}

// readblocks(block_num, buf[, offset])
static mp_obj_t ramdisk_readblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    memcpy(buf.buf, ramdisk_span(args[1], n_args == 4 ? args[3] : MP_OBJ_NULL, buf.len), buf.len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(ramdisk_readblocks_obj, 3, 4, ramdisk_readblocks);

// writeblocks(block_num, buf[, offset])
static mp_obj_t ramdisk_writeblocks(size_t n_args, const mp_obj_t *args) {
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    memcpy(ramdisk_span(args[1], n_args == 4 ? args[3] : MP_OBJ_NULL, buf.len), buf.buf, buf.len);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(ramdisk_writeblocks_obj, 3, 4, ramdisk_writeblocks);

static mp_obj_t ramdisk_ioctl(mp_obj_t self, mp_obj_t op, mp_obj_t arg) {
    switch (mp_obj_get_int(op)) {
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(RAMDISK_BLOCK_COUNT);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(RAMDISK_BLOCK_SIZE);
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE: // RAM needs no erase before a write
            return MP_OBJ_NEW_SMALL_INT(0);
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(ramdisk_ioctl_obj, ramdisk_ioctl);

static const mp_rom_map_elem_t ramdisk_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&ramdisk_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&ramdisk_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&ramdisk_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(ramdisk_locals_dict, ramdisk_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    ramdisk_type,
    MP_QSTR_RAMDisk,
    MP_TYPE_FLAG_NONE,
    locals_dict, &ramdisk_locals_dict
    );

static const mp_obj_base_t ramdisk_obj = { &ramdisk_type };

static bool ramdisk_format(mp_obj_t bdev) {
    nlr_buf_t nlr;
    if (nlr_push(&nlr) == 0) {
        mp_obj_t mkfs[3];
        mp_load_method(MP_OBJ_FROM_PTR(&mp_type_vfs_lfs2), MP_QSTR_mkfs, mkfs);
        mkfs[2] = bdev;
        mp_call_method_n_kw(1, 0, mkfs);
        nlr_pop();
        return true;
    }
    mp_obj_print_exception(&mp_plat_print, MP_OBJ_FROM_PTR(nlr.ret_val));
    return false;
}

void netsec_ramdisk_mount(bool format) {
    mp_obj_t bdev = MP_OBJ_FROM_PTR(&ramdisk_obj);
    if (format && !ramdisk_format(bdev)) {
        mp_printf(&mp_plat_print, "netsec: could not format the RAM disk; no filesystem\n");
        return;
    }
    int err = mp_vfs_mount_and_chdir_protected(bdev, MP_OBJ_NEW_QSTR(MP_QSTR__slash_));
    if (err != 0) {
        mp_printf(&mp_plat_print, "netsec: could not mount the RAM disk at / (errno %d); no filesystem\n", -err);
    }
}
