# netsec on a Raspberry Pi Pico (RP2040, Cortex-M0+, no wireless): MicroPython's RPI_PICO board as
# it is, plus what every netsec rp2 board adds (../rp2_common/netsec.cmake).
set(NETSEC_UPSTREAM_BOARD RPI_PICO)
include(${CMAKE_CURRENT_LIST_DIR}/../rp2_common/netsec.cmake)
