"""Bring a board's wired network up: network.LAN, then DHCP or a static address.

    from netsec import lan
    lan.up()                                  # DHCP; returns ("10.0.2.15", "255.255.255.0")
    lan.up(static=("10.0.2.15", "255.255.255.0", "10.0.2.2", "10.0.2.3"))  # address, mask, gateway, DNS

Raises OSError with a one-line message when the board has no Ethernet controller, and when no
address comes within timeout_ms (no DHCP answer: on QEMU, is the image booted with a network,
`-nic user,...`?). For boards whose MicroPython has network.LAN (the mps2 QEMU images).
"""
import time

import network


def up(timeout_ms=15000, static=None):
    """Activate the LAN interface and wait for an IPv4 address; return (address, netmask)."""
    nic = network.LAN()
    nic.active(True)
    if static:
        nic.ifconfig(static)  # stops DHCP
    start = time.ticks_ms()
    while not nic.isconnected():
        if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
            why = ("the Ethernet link is down" if nic.status() == network.LAN.STAT_NO_LINK
                   else "no DHCP server answered")
            raise OSError("network: no IPv4 address after %d ms: %s (on QEMU, boot the image with "
                          "a network: netsec_cli.qemu --net)" % (timeout_ms, why))
        time.sleep_ms(20)
    return nic.ipconfig("addr4")
