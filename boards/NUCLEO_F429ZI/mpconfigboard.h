// netsec on a NUCLEO-F429ZI (STM32F429, Cortex-M4, Ethernet and lwIP):
// MicroPython's NUCLEO_F429ZI board header, then what every netsec STM32 board adds.
#include "boards/NUCLEO_F429ZI/mpconfigboard.h"
#include "../stm32_common/mpconfigboard_netsec.h"
