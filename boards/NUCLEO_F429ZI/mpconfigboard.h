// netsec on a NUCLEO-F429ZI (STM32F429, Cortex-M4, Ethernet and lwIP):
// MicroPython's NUCLEO_F429ZI board header as it is.
#include "boards/NUCLEO_F429ZI/mpconfigboard.h"
