// netsec on a Raspberry Pi Pico 2 W (RP2350, Cortex-M33, CYW43 Wi-Fi and lwIP):
// MicroPython's RPI_PICO2_W board header, then what every netsec rp2 board adds.
#include "boards/RPI_PICO2_W/mpconfigboard.h"
#include "../rp2_common/mpconfigboard_netsec.h"
