// netsec on a Raspberry Pi Pico W (RP2040, Cortex-M0+, CYW43 Wi-Fi and lwIP):
// MicroPython's RPI_PICO_W board header, then what every netsec rp2 board adds.
#include "boards/RPI_PICO_W/mpconfigboard.h"
#include "../rp2_common/mpconfigboard_netsec.h"
