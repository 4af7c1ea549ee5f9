// netsec on a Raspberry Pi Pico (RP2040, Cortex-M0+, no wireless):
// MicroPython's RPI_PICO board header, then what every netsec rp2 board adds.
#include "boards/RPI_PICO/mpconfigboard.h"
#include "../rp2_common/mpconfigboard_netsec.h"
