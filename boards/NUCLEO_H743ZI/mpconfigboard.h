// netsec on a NUCLEO-H743ZI (STM32H743, Cortex-M7, Ethernet and lwIP):
// MicroPython's NUCLEO_H743ZI board header, then what every netsec STM32 board adds.
#include "boards/NUCLEO_H743ZI/mpconfigboard.h"
#include "../stm32_common/mpconfigboard_netsec.h"
