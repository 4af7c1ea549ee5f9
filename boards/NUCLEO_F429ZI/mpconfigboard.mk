# netsec on a NUCLEO-F429ZI (STM32F429, Cortex-M4, Ethernet and lwIP): MicroPython's NUCLEO_F429ZI
# board as it is, plus what every netsec STM32 board adds (../stm32_common/netsec.mk).
NETSEC_UPSTREAM_BOARD = NUCLEO_F429ZI
include $(BOARD_DIR)/../stm32_common/netsec.mk
