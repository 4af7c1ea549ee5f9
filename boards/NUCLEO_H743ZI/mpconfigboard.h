// netsec on a NUCLEO-H743ZI (STM32H743, Cortex-M7, Ethernet and lwIP):
// MicroPython's NUCLEO_H743ZI board header as it is.
#include "boards/NUCLEO_H743ZI/mpconfigboard.h"
