// netsec on a Raspberry Pi Pico 2 (RP2350, Cortex-M33, no wireless): MicroPython's RPI_PICO2 board header as it is.
#include "boards/RPI_PICO2/mpconfigboard.h"
