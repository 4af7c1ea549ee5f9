# netsec QEMU image on mps2-an385 compiled for Armv6-M (Cortex-M0+, the RP2040's core). Armv6-M
# is a subset of the Cortex-M3's instruction set, so the M3 machine runs it: this image counts
# what netsec costs in the instructions an RP2040 has (no 32x32->64 multiply, no divide, 16-bit
# Thumb only). The counts are instructions, not M0+ cycles. Same board code as QEMU_MPS2_AN385.
QEMU_MACHINE = mps2-an385
MPS2_CPU = cortex-m0plus
MPS2_MCU_NAME = Cortex-M0+ (Armv6-M code on the Cortex-M3)
MPS2_ARCH = armv6m

include $(BOARD_DIR)/../QEMU_MPS2_AN385/mps2.mk
