// The SMSC LAN9118 Ethernet controller of the mps2 boards (QEMU: hw/net/lan9118.c, 32-bit
// mode), as an lwIP network interface. Register facts: SMSC LAN9118 datasheet.
#ifndef NETSEC_LAN9118_H
#define NETSEC_LAN9118_H

#include <stdbool.h>
#include "lwip/netif.h"

// mps2-an385 and mps2-an386 map the controller here and wire its interrupt to IRQ 13.
#define LAN9118_BASE (0x40200000u)
#define LAN9118_IRQ (13)

// Reset the controller and read its MAC address into mac[6]. False: no LAN9118 answers at
// LAN9118_BASE (its BYTE_TEST register does not read the datasheet's pattern).
bool lan9118_reset(uint8_t mac[6]);

// Start transmitting and receiving (after lan9118_reset); a received frame raises IRQ 13,
// whose handler only wakes the CPU.
void lan9118_start(void);

// Whether the PHY reports a link (MII basic status register, bit 2).
bool lan9118_link_up(void);

// Send one Ethernet frame (the pbuf chain p, at most one frame long).
err_t lan9118_output(struct netif *netif, struct pbuf *p);

// Hand every frame waiting in the receive FIFO (at most max_frames) to netif->input; return how
// many were taken. A frame lwIP has no buffer for is dropped (TCP resends it).
int lan9118_receive(struct netif *netif, int max_frames);

#endif
