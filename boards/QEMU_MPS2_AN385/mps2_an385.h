// The few mps2-an385 and Cortex-M3 registers this board's C files use.
#ifndef NETSEC_MPS2_AN385_H
#define NETSEC_MPS2_AN385_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

// The CPU clock QEMU models for mps2-an385; SysTick counts it.
#define MPS2_SYSCLK_HZ (25000000u)

// Cortex-M3 system control block and SysTick.
#define SCB_ICSR REG32(0xE000ED04)
#define SCB_ICSR_PENDSTSET (1u << 26)
#define SCB_VTOR REG32(0xE000ED08)
#define SYST_CSR REG32(0xE000E010)
#define SYST_RVR REG32(0xE000E014)
#define SYST_CVR REG32(0xE000E018)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE_CPU (1u << 2)
#define NVIC_ISER0 REG32(0xE000E100)

// Exception numbers in the vector table.
#define EXC_SYSTICK (15)
#define EXC_IRQ0 (16)
#define MPS2_NUM_IRQS (32)

// UART0 (CMSDK APB UART), the console; its receive interrupt is IRQ 0.
#define UART0_BASE (0x40004000u)
#define UART0_DATA REG32(UART0_BASE + 0x00)
#define UART0_STATE REG32(UART0_BASE + 0x04)
#define UART0_CTRL REG32(UART0_BASE + 0x08)
#define UART0_INTSTATUS REG32(UART0_BASE + 0x0C) // write 1 to clear
#define UART_STATE_RXFULL (1u << 1)
#define UART_CTRL_RX_INTEN (1u << 3)
#define UART_INT_RX (1u << 1)
#define UART0_RX_IRQ (0)

// PRIMASK: mask interrupts around data shared with an interrupt handler.
static inline uint32_t mps2_irq_disable(void) {
    uint32_t primask;
    __asm volatile ("mrs %0, primask\n cpsid i" : "=r" (primask) : : "memory");
    return primask;
}

static inline void mps2_irq_restore(uint32_t primask) {
    __asm volatile ("msr primask, %0" : : "r" (primask) : "memory");
}

#endif
