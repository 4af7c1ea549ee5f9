# netsec QEMU image on mps2-an385: Cortex-M3 (Armv7-M). The CPU is set here and only here;
# everything else is shared with the other mps2 boards (mps2.mk).
QEMU_MACHINE = mps2-an385
MPS2_CPU = cortex-m3
MPS2_MCU_NAME = Cortex-M3
MPS2_ARCH = armv7m

include $(BOARD_DIR)/../QEMU_MPS2_AN385/mps2.mk
