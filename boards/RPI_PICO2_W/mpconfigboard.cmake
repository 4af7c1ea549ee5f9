# netsec on a Raspberry Pi Pico 2 W (RP2350, Cortex-M33, CYW43 Wi-Fi and lwIP): MicroPython's
# RPI_PICO2_W board as it is, plus what every netsec rp2 board adds (../rp2_common/netsec.cmake).
set(NETSEC_UPSTREAM_BOARD RPI_PICO2_W)
include(${CMAKE_CURRENT_LIST_DIR}/../rp2_common/netsec.cmake)
