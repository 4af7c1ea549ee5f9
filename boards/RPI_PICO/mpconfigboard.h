// netsec on a Raspberry Pi Pico (RP2040, Cortex-M0+, no wireless): MicroPython's RPI_PICO board header as it is.
#include "boards/RPI_PICO/mpconfigboard.h"
