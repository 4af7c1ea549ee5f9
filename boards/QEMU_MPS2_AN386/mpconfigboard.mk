# netsec QEMU image on mps2-an386: Cortex-M4 (Armv7E-M, the core of the STM32F4 boards), from
# the same board code as QEMU_MPS2_AN385 (same memory map, UART, LAN9118 at 0x40200000, IRQ 13).
# Soft-float like the M3 image: the port's start-up code does not switch the FPU on, and netsec
# does no floating point on the hot path.
QEMU_MACHINE = mps2-an386
MPS2_CPU = cortex-m4
MPS2_MCU_NAME = Cortex-M4
MPS2_ARCH = armv7em

include $(BOARD_DIR)/../QEMU_MPS2_AN385/mps2.mk
