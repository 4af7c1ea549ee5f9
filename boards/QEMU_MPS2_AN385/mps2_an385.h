// The few mps2-an385 and Cortex-M3 registers this board's C files use.
#ifndef NETSEC_MPS2_AN385_H
#define NETSEC_MPS2_AN385_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

// The CPU clock QEMU models for mps2-an385; the CMSDK timers count it.
#define MPS2_SYSCLK_HZ (25000000u)

// Cortex-M3 system control block and interrupt controller.
#define SCB_VTOR REG32(0xE000ED08)
#define NVIC_ISER0 REG32(0xE000E100)
#define NVIC_ICPR0 REG32(0xE000E280)

// Exception numbers in the vector table.
#define EXC_IRQ0 (16)
#define MPS2_NUM_IRQS (32)

// CMSDK APB timers 0 and 1: 32-bit down counters at the system clock, IRQ 8 and 9.
#define CMSDK_TIMER0 (0x40000000u)
#define CMSDK_TIMER1 (0x40001000u)
#define CMSDK_TIMER_CTRL(base) REG32((base) + 0x00)
#define CMSDK_TIMER_VALUE(base) REG32((base) + 0x04)
#define CMSDK_TIMER_RELOAD(base) REG32((base) + 0x08)
#define CMSDK_TIMER_INTSTATUS(base) REG32((base) + 0x0C)
#define CMSDK_TIMER_INTCLEAR(base) REG32((base) + 0x0C) // write 1 to clear
#define CMSDK_TIMER_CTRL_EN (1u << 0)
#define CMSDK_TIMER_CTRL_IRQEN (1u << 3)
#define TIMER0_IRQ (8)
#define TIMER1_IRQ (9)

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
