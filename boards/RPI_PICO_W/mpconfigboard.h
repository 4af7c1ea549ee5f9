// netsec on a Raspberry Pi Pico W (RP2040, Cortex-M0+, CYW43 Wi-Fi and lwIP): MicroPython's RPI_PICO_W board header as it is.
#include "boards/RPI_PICO_W/mpconfigboard.h"
