// netsec on a Raspberry Pi Pico 2 (RP2350, Cortex-M33, no wireless):
// MicroPython's RPI_PICO2 board header, then what every netsec rp2 board adds.
#include "boards/RPI_PICO2/mpconfigboard.h"
#include "../rp2_common/mpconfigboard_netsec.h"
