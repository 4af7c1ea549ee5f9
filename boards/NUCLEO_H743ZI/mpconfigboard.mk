# netsec on a NUCLEO-H743ZI (STM32H743, Cortex-M7, Ethernet and lwIP): MicroPython's NUCLEO_H743ZI
# board as it is, plus what every netsec STM32 board adds (../stm32_common/netsec.mk).
NETSEC_UPSTREAM_BOARD = NUCLEO_H743ZI
include $(BOARD_DIR)/../stm32_common/netsec.mk
