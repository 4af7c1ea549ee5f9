# netsec on a Raspberry Pi Pico 2 (RP2350, Cortex-M33, no wireless): MicroPython's RPI_PICO2 board
# as it is, plus what every netsec rp2 board adds (../rp2_common/netsec.cmake).
set(NETSEC_UPSTREAM_BOARD RPI_PICO2)
include(${CMAKE_CURRENT_LIST_DIR}/../rp2_common/netsec.cmake)
