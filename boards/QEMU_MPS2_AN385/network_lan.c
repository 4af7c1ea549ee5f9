// network.LAN for the mps2 boards: the LAN9118 (lan9118.c) as lwIP's one network interface.
//
//     import network
//     lan = network.LAN()          # the board has one; every call returns the same object
//     lan.active(True)             # link up and DHCP; OSError(ENODEV) if there is no LAN9118
//     lan.isconnected()            # True once the interface has an IPv4 address
//     lan.ipconfig("addr4")        # ("10.0.2.15", "255.255.255.0"); ipconfig(addr4=..., gw4=...)
//     lan.ifconfig()               # (ip, netmask, gateway, dns); ifconfig((...)) sets them statically
//     lan.status()                 # STAT_DOWN, STAT_NO_LINK, STAT_NO_IP or STAT_GOT_IP
//     lan.status("buffers")        # lwIP's buffers in the heap (lwip_heap.c), as a tuple:
//                                  # (bytes of received frames, bytes of its own, frames dropped)
//     lan.config("mac")            # the 6-byte MAC address (QEMU's -nic mac=..., default 52:54:00:12:34:56)
//
// lwIP runs only in thread context: netsec_lan_poll() is MicroPython's event hook
// (MICROPY_INTERNAL_EVENT_HOOK), called whenever MicroPython waits (socket calls, select/poll,
// asyncio, time.sleep, the REPL), and takes the received frames; the idle loop that follows it
// (ticks.c) runs lwIP's timers when one is due and sleeps until the next, or until the
// LAN9118's receive interrupt, which only wakes the CPU. No interrupt handler touches lwIP, so
// nothing needs a lock, and modlwip's callbacks never run in the middle of a Python call.
#include <string.h>

#include "py/runtime.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "extmod/modnetwork.h"
#include "lwip/init.h"
#include "lwip/timeouts.h"
#include "lwip/dhcp.h"
#include "lwip/etharp.h"
#include "netif/ethernet.h"
#include "lan9118.h"
#include "board.h"

// The frames one poll hands to lwIP at most, so a flood cannot starve the Python code.
#define FRAMES_PER_POLL (8)

enum {
    STAT_DOWN = 0,     // active(False)
    STAT_NO_LINK = 1,  // active, the PHY reports no link
    STAT_NO_IP = 2,    // active, link up, no IPv4 address yet (DHCP still asking)
    STAT_GOT_IP = 3,   // active, link up, an IPv4 address
};

typedef struct {
    mp_obj_base_t base;
    struct netif netif;
    uint8_t mac[6];
    bool added;   // netif_add() done (once per power-on)
    bool polling; // guards netsec_lan_poll against re-entry
} network_lan_obj_t;

const mp_obj_type_t network_lan_type;
static network_lan_obj_t lan_obj = { { &network_lan_type } };

// lwIP starts once at power-on; it and network.LAN keep their state over a soft reset (the
// sockets close then, by their finalisers). The list of NICs starts empty at every boot.
void netsec_lan_init(bool cold_boot) {
    if (cold_boot) {
        lwip_init();
    }
    mod_network_init();
}

void netsec_lan_poll(void) {
    network_lan_obj_t *self = &lan_obj;
    if (!self->added || self->polling) {
        return;
    }
    self->polling = true;
    netsec_lwip_collect_if_wanted();
    if (netif_is_up(&self->netif)) {
        netsec_lwip_context_t before = netsec_lwip_enter(NETSEC_LWIP_RECEIVING);
        if (lan9118_receive(&self->netif, FRAMES_PER_POLL) > 0) {
            netsec_wake_for_input(); // the caller looks at the sockets again before sleeping
        }
        netsec_lwip_exit(before);
    }
    self->polling = false;
}

bool netsec_lan_timers(void) {
    network_lan_obj_t *self = &lan_obj;
    if (!self->added || self->polling || sys_timeouts_sleeptime() != 0) {
        return false;
    }
    self->polling = true;
    sys_check_timeouts();
    self->polling = false;
    return true;
}

uint32_t netsec_lan_sleep_ms(void) {
    return lan_obj.added ? sys_timeouts_sleeptime() : SYS_TIMEOUTS_SLEEPTIME_INFINITE;
}

u32_t sys_now(void) {
    return mp_hal_ticks_ms();
}

static err_t lan_netif_init(struct netif *netif) {
    network_lan_obj_t *self = netif->state;
    netif->name[0] = 'e';
    netif->name[1] = 'n';
    netif->output = etharp_output;
    netif->linkoutput = lan9118_output;
    netif->mtu = 1500;
    netif->hwaddr_len = 6;
    memcpy(netif->hwaddr, self->mac, 6);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP;
    return ERR_OK;
}

// The driver hands each frame here; lwIP's input walks its lists (lwip_heap.c).
static err_t lan_input(struct pbuf *p, struct netif *netif) {
    netsec_lwip_context_t before = netsec_lwip_enter(NETSEC_LWIP_CORE);
    err_t err = ethernet_input(p, netif);
    netsec_lwip_exit(before);
    return err;
}

static void lan_up(network_lan_obj_t *self) {
    if (!self->added) {
        if (!lan9118_reset(self->mac)) {
            mp_raise_msg_varg(&mp_type_OSError,
                MP_ERROR_TEXT("network.LAN: no LAN9118 Ethernet controller answers at 0x%08x"),
                (unsigned)LAN9118_BASE);
        }
        lan9118_start();
        ip4_addr_t none = { 0 };
        netif_add(&self->netif, &none, &none, &none, self, lan_netif_init, lan_input);
        // DHCP's state outlives the heap over a soft reset: keep it out of it.
        static struct dhcp dhcp;
        dhcp_set_struct(&self->netif, &dhcp);
        netif_set_hostname(&self->netif, mod_network_hostname_data);
        netif_set_default(&self->netif);
        self->added = true;
    }
    netif_set_up(&self->netif);
    if (lan9118_link_up()) {
        netif_set_link_up(&self->netif);
    }
    if (ip4_addr_isany_val(*netif_ip4_addr(&self->netif))) {
        dhcp_start(&self->netif);
    }
}

static void lan_down(network_lan_obj_t *self) {
    if (self->added) {
        dhcp_release_and_stop(&self->netif);
        netif_set_down(&self->netif);
    }
}

static int lan_status(network_lan_obj_t *self) {
    if (!self->added || !netif_is_up(&self->netif)) {
        return STAT_DOWN;
    }
    if (!netif_is_link_up(&self->netif)) {
        return STAT_NO_LINK;
    }
    if (ip4_addr_isany_val(*netif_ip4_addr(&self->netif))) {
        return STAT_NO_IP;
    }
    return STAT_GOT_IP;
}

static mp_obj_t network_lan_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 0, false);
    mod_network_register_nic(MP_OBJ_FROM_PTR(&lan_obj));
    return MP_OBJ_FROM_PTR(&lan_obj);
}

static mp_obj_t network_lan_active(size_t n_args, const mp_obj_t *args) {
    network_lan_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    if (n_args == 1) {
        return mp_obj_new_bool(lan_status(self) != STAT_DOWN);
    }
    if (mp_obj_is_true(args[1])) {
        lan_up(self);
    } else {
        lan_down(self);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_active_obj, 1, 2, network_lan_active);

static mp_obj_t network_lan_isconnected(mp_obj_t self_in) {
    return mp_obj_new_bool(lan_status(MP_OBJ_TO_PTR(self_in)) == STAT_GOT_IP);
}
static MP_DEFINE_CONST_FUN_OBJ_1(network_lan_isconnected_obj, network_lan_isconnected);

static mp_obj_t network_lan_status(size_t n_args, const mp_obj_t *args) {
    if (n_args == 1) {
        return MP_OBJ_NEW_SMALL_INT(lan_status(MP_OBJ_TO_PTR(args[0])));
    }
    if (mp_obj_str_get_qstr(args[1]) != MP_QSTR_buffers) {
        mp_raise_ValueError(MP_ERROR_TEXT("network.LAN.status: unknown parameter (only \"buffers\")"));
    }
    size_t counts[3];
    netsec_lwip_heap_counts(counts);
    mp_obj_t items[3];
    for (int i = 0; i < 3; ++i) {
        items[i] = mp_obj_new_int_from_uint(counts[i]);
    }
    return mp_obj_new_tuple(3, items);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_status_obj, 1, 2, network_lan_status);

static void require_added(network_lan_obj_t *self) {
    if (!self->added) {
        mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("network.LAN: call active(True) first"));
    }
}

static mp_obj_t network_lan_ifconfig(size_t n_args, const mp_obj_t *args) {
    network_lan_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    require_added(self);
    return mod_network_nic_ifconfig(&self->netif, n_args - 1, args + 1);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(network_lan_ifconfig_obj, 1, 2, network_lan_ifconfig);

static mp_obj_t network_lan_ipconfig(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    network_lan_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    require_added(self);
    return mod_network_nic_ipconfig(&self->netif, n_args - 1, args + 1, kwargs);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(network_lan_ipconfig_obj, 1, network_lan_ipconfig);

// config("mac") is the one readable parameter; the MAC comes from QEMU (-nic ...,mac=).
static mp_obj_t network_lan_config(size_t n_args, const mp_obj_t *args, mp_map_t *kwargs) {
    network_lan_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    if (n_args != 2 || kwargs->used != 0) {
        mp_raise_TypeError(MP_ERROR_TEXT("network.LAN.config: ask for one parameter, e.g. config(\"mac\")"));
    }
    if (mp_obj_str_get_qstr(args[1]) != MP_QSTR_mac) {
        mp_raise_ValueError(MP_ERROR_TEXT("network.LAN.config: unknown parameter (only \"mac\")"));
    }
    if (!self->added && !lan9118_reset(self->mac)) {
        mp_raise_msg(&mp_type_OSError, MP_ERROR_TEXT("network.LAN: no LAN9118 Ethernet controller"));
    }
    return mp_obj_new_bytes(self->mac, 6);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(network_lan_config_obj, 1, network_lan_config);

static const mp_rom_map_elem_t network_lan_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_active), MP_ROM_PTR(&network_lan_active_obj) },
    { MP_ROM_QSTR(MP_QSTR_isconnected), MP_ROM_PTR(&network_lan_isconnected_obj) },
    { MP_ROM_QSTR(MP_QSTR_status), MP_ROM_PTR(&network_lan_status_obj) },
    { MP_ROM_QSTR(MP_QSTR_ifconfig), MP_ROM_PTR(&network_lan_ifconfig_obj) },
    { MP_ROM_QSTR(MP_QSTR_ipconfig), MP_ROM_PTR(&network_lan_ipconfig_obj) },
    { MP_ROM_QSTR(MP_QSTR_config), MP_ROM_PTR(&network_lan_config_obj) },
    { MP_ROM_QSTR(MP_QSTR_STAT_DOWN), MP_ROM_INT(STAT_DOWN) },
    { MP_ROM_QSTR(MP_QSTR_STAT_NO_LINK), MP_ROM_INT(STAT_NO_LINK) },
    { MP_ROM_QSTR(MP_QSTR_STAT_NO_IP), MP_ROM_INT(STAT_NO_IP) },
    { MP_ROM_QSTR(MP_QSTR_STAT_GOT_IP), MP_ROM_INT(STAT_GOT_IP) },
};
static MP_DEFINE_CONST_DICT(network_lan_locals_dict, network_lan_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    network_lan_type,
    MP_QSTR_LAN,
    MP_TYPE_FLAG_NONE,
    make_new, network_lan_make_new,
    locals_dict, &network_lan_locals_dict
    );

uint32_t netsec_lwip_rand(void) {
    uint32_t value;
    size_t got;
    mbedtls_hardware_poll(NULL, (unsigned char *)&value, sizeof(value), &got);
    return value;
}
