// SMSC LAN9118 driver for lwIP (see lan9118.h). Frames are taken in thread context, never in
// an interrupt: network_lan.c calls lan9118_receive() whenever MicroPython waits, so lwIP and
// modlwip need no lock. The receive interrupt only wakes an idle CPU (ticks.c).
#include <string.h>

#include "lwip/pbuf.h"
#include "lwip/snmp.h"
#include "lan9118.h"
#include "mps2_an385.h"
#include "board.h"

#define LAN_REG(offset) (*(volatile uint32_t *)(LAN9118_BASE + (offset)))

// System control and status registers (datasheet section 5.3).
#define RX_DATA_FIFO LAN_REG(0x00)
#define TX_DATA_FIFO LAN_REG(0x20)
#define RX_STATUS_FIFO LAN_REG(0x40)
#define TX_STATUS_FIFO LAN_REG(0x48)
#define IRQ_CFG LAN_REG(0x54)
#define INT_STS LAN_REG(0x58)
#define INT_EN LAN_REG(0x5c)
#define BYTE_TEST LAN_REG(0x64)
#define FIFO_INT LAN_REG(0x68)
#define RX_CFG LAN_REG(0x6c)
#define TX_CFG LAN_REG(0x70)
#define HW_CFG LAN_REG(0x74)
#define RX_FIFO_INF LAN_REG(0x7c)
#define TX_FIFO_INF LAN_REG(0x80)
#define PMT_CTRL LAN_REG(0x84)
#define MAC_CSR_CMD LAN_REG(0xa4)
#define MAC_CSR_DATA LAN_REG(0xa8)

#define BYTE_TEST_PATTERN (0x87654321u)
#define HW_CFG_SRST (1u << 0)
// IRQ_CFG: the pin enabled, active high, push-pull (QEMU's model inverts the line otherwise).
#define IRQ_CFG_EN (1u << 8)
#define IRQ_CFG_POL_HIGH (1u << 4)
#define IRQ_CFG_PUSH_PULL (1u << 0)
// INT_STS/INT_EN: RX status FIFO level; with FIFO_INT's RX status level 0, any received frame.
#define INT_RSFL (1u << 3)
#define FIFO_INT_RX_STATUS_LEVEL (0xffu)
#define PMT_CTRL_READY (1u << 0)
#define TX_CFG_TX_ON (1u << 1)
#define TX_CFG_TXS_DUMP (1u << 15)
#define RX_FIFO_INF_STATUS_USED(v) (((v) >> 16) & 0xff)
#define TX_FIFO_INF_DATA_FREE(v) ((v) & 0xffff)
#define TX_FIFO_INF_STATUS_USED(v) (((v) >> 16) & 0xff)
#define RX_STATUS_LENGTH(v) (((v) >> 16) & 0x3fff) // frame length including the 4-byte FCS
#define RX_STATUS_ERROR (1u << 15)
// TX command A: buffer size in bits 10:0, first segment bit 13, last segment bit 12.
#define TX_CMD_A_FIRST (1u << 13)
#define TX_CMD_A_LAST (1u << 12)

// MAC control and status registers, reached through MAC_CSR_CMD/MAC_CSR_DATA.
#define MAC_CSR_BUSY (1u << 31)
#define MAC_CSR_READ (1u << 30)
#define MAC_CR (1)
#define MAC_ADDRH (2)
#define MAC_ADDRL (3)
#define MAC_MII_ACC (6)
#define MAC_MII_DATA (7)
#define MAC_CR_MCPAS (1u << 19) // pass all multicast (mDNS)
#define MAC_CR_FDPX (1u << 20)
#define MAC_CR_TXEN (1u << 3)
#define MAC_CR_RXEN (1u << 2)
#define MII_PHY_ADDR (1u << 11) // internal PHY at address 1, register in bits 10:6
#define MII_BMSR (1)
#define MII_BMSR_LINK (1u << 2)

#define ETH_FRAME_MAX (1514) // without the FCS
#define BUSY_WAIT_LIMIT (100000)

static bool wait_clear(volatile uint32_t *reg, uint32_t bits) {
    for (int i = 0; i < BUSY_WAIT_LIMIT; ++i) {
        if ((*reg & bits) == 0) {
            return true;
        }
    }
    return false;
}

static uint32_t mac_csr_read(uint32_t reg) {
    MAC_CSR_CMD = MAC_CSR_BUSY | MAC_CSR_READ | reg;
    wait_clear(&MAC_CSR_CMD, MAC_CSR_BUSY);
    return MAC_CSR_DATA;
}

static void mac_csr_write(uint32_t reg, uint32_t value) {
    MAC_CSR_DATA = value;
    MAC_CSR_CMD = MAC_CSR_BUSY | reg;
    wait_clear(&MAC_CSR_CMD, MAC_CSR_BUSY);
}

bool lan9118_reset(uint8_t mac[6]) {
    if (BYTE_TEST != BYTE_TEST_PATTERN) {
        return false;
    }
    HW_CFG = HW_CFG_SRST;
    if (!wait_clear(&HW_CFG, HW_CFG_SRST)) {
        return false;
    }
    for (int i = 0; i < BUSY_WAIT_LIMIT && !(PMT_CTRL & PMT_CTRL_READY); ++i) {
    }
    INT_EN = 0; // until lan9118_start()
    uint32_t low = mac_csr_read(MAC_ADDRL);
    uint32_t high = mac_csr_read(MAC_ADDRH);
    for (int i = 0; i < 4; ++i) {
        mac[i] = (uint8_t)(low >> (8 * i));
    }
    mac[4] = (uint8_t)high;
    mac[5] = (uint8_t)(high >> 8);
    return true;
}

// A frame's status entered the RX status FIFO: clear the (latched) status and wake the CPU.
static void lan9118_rx_handler(void) {
    INT_STS = INT_RSFL;
    netsec_wake_for_input();
}

void lan9118_start(void) {
    RX_CFG = 0; // frames start on a word boundary, no end padding
    TX_CFG = TX_CFG_TX_ON;
    FIFO_INT &= ~FIFO_INT_RX_STATUS_LEVEL;
    INT_STS = 0xffffffffu;
    INT_EN = INT_RSFL;
    IRQ_CFG = IRQ_CFG_EN | IRQ_CFG_POL_HIGH | IRQ_CFG_PUSH_PULL;
    netsec_set_irq_handler(LAN9118_IRQ, lan9118_rx_handler);
    NVIC_ICPR0 = 1u << LAN9118_IRQ;
    NVIC_ISER0 = 1u << LAN9118_IRQ;
    // Reset leaves the MAC promiscuous; receive only our address, broadcast and multicast.
    mac_csr_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX | MAC_CR_MCPAS);
}

bool lan9118_link_up(void) {
    mac_csr_write(MAC_MII_ACC, MII_PHY_ADDR | (MII_BMSR << 6));
    return (mac_csr_read(MAC_MII_DATA) & MII_BMSR_LINK) != 0;
}

err_t lan9118_output(struct netif *netif, struct pbuf *p) {
    (void)netif;
    if (p->tot_len > ETH_FRAME_MAX) {
        return ERR_BUF;
    }
    uint32_t words = (p->tot_len + 3) / 4 + 2; // data plus the two command words
    if (TX_FIFO_INF_DATA_FREE(TX_FIFO_INF) < words * 4) {
        return ERR_MEM; // the FIFO drains at once in QEMU; on hardware lwIP retries later
    }
    // One buffer per frame: copy the chain into whole words.
    static uint32_t frame[(ETH_FRAME_MAX + 3) / 4];
    pbuf_copy_partial(p, frame, p->tot_len, 0);
    TX_DATA_FIFO = TX_CMD_A_FIRST | TX_CMD_A_LAST | p->tot_len;
    TX_DATA_FIFO = p->tot_len; // command B: tag 0, frame length
    for (uint32_t i = 0; i < (p->tot_len + 3u) / 4; ++i) {
        TX_DATA_FIFO = frame[i];
    }
    // Nobody reads the per-frame TX status: keep its FIFO from filling up.
    if (TX_FIFO_INF_STATUS_USED(TX_FIFO_INF) > 128) {
        TX_CFG = TX_CFG_TX_ON | TX_CFG_TXS_DUMP;
    }
    return ERR_OK;
}

int lan9118_receive(struct netif *netif, int max_frames) {
    int taken = 0;
    while (taken < max_frames && RX_FIFO_INF_STATUS_USED(RX_FIFO_INF) > 0) {
        uint32_t status = RX_STATUS_FIFO;
        uint32_t length = RX_STATUS_LENGTH(status);
        uint32_t words = (length + 3) / 4;
        struct pbuf *p = NULL;
        if (!(status & RX_STATUS_ERROR) && length > 4 && length - 4 <= ETH_FRAME_MAX) {
            p = pbuf_alloc(PBUF_RAW, (u16_t)(length - 4), PBUF_RAM); // in MicroPython's heap
        }
        if (p == NULL) {
            // Bad frame, or no buffer: read it out of the FIFO and drop it. (Not with the
            // RX_DP_CTRL fast-forward: QEMU's model then loses count of the FIFO's words.)
            for (uint32_t i = 0; i < words; ++i) {
                (void)RX_DATA_FIFO;
            }
            LINK_STATS_INC(link.drop);
            taken += 1;
            continue;
        }
        // Copy word by word into the pbuf, the FCS last and discarded.
        static uint32_t frame[(ETH_FRAME_MAX + 4 + 3) / 4];
        for (uint32_t i = 0; i < words; ++i) {
            frame[i] = RX_DATA_FIFO;
        }
        pbuf_take(p, frame, p->tot_len);
        if (netif->input(p, netif) != ERR_OK) {
            pbuf_free(p);
        }
        taken += 1;
    }
    return taken;
}
