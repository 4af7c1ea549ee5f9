# What every netsec mps2 image shares (QEMU_MPS2_AN385, _AN386, _AN385_ARMV6M): MicroPython's qemu
# port with tls on mbedTLS, lwIP sockets and network.LAN on the LAN9118 Ethernet controller,
# time, select/poll on the UART, a littlefs RAM disk, a real-time clock, and netsec frozen in.
# A board's mpconfigboard.mk sets its CPU (QEMU_MACHINE, MPS2_CPU, MPS2_ARCH) and includes this.
# Built by `make qemu-image QEMU_BOARD=...`; booted by `make qemu` (tools/netsec_cli/qemu.py).

# The shared sources live with the first board; every board's directory may add its own.
MPS2_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

QEMU_ARCH = arm
CFLAGS += -mthumb -mcpu=$(MPS2_CPU) -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"$(MPS2_MCU_NAME)"'
# The garbage collector's register scan: Armv6-M has only the 16-bit Thumb instructions.
SRC_BOARD_O = shared/runtime/gchelper_native.o \
	shared/runtime/gchelper_$(if $(filter armv6m,$(MPS2_ARCH)),thumb1,thumb2).o
MPY_CROSS_FLAGS += -march=$(MPS2_ARCH)

# The stock mps2.ld lets libgcc's .ARM.exidx overlap .data; this one keeps it inside .text.
LDSCRIPT = $(MPS2_DIR)/mps2_an385.ld

# The qemu port has no board header: mpconfigboard.h takes the port's settings and adds ours.
CFLAGS += -I$(BOARD_DIR) -I$(MPS2_DIR) -I$(MPS2_DIR)/../../firmware/mbedtls -DMP_CONFIGFILE='"mpconfigboard.h"'

# A changed board configuration (modules switched on or off) must regenerate the qstrs, and
# then the frozen modules' table too: makemanifest.py rewrites frozen_content.c only when a
# frozen module is newer, so a name the core now has (os.urandom) would be declared twice.
QSTR_GLOBAL_DEPENDENCIES += $(MPS2_DIR)/mpconfigboard.h
$(BUILD)/frozen_content.c: $(BUILD)/frozen-qstrs.stamp
$(BUILD)/frozen-qstrs.stamp: $(BUILD)/genhdr/qstrdefs.generated.h
	$(Q)rm -f $(BUILD)/frozen_content.c
	$(Q)touch $@

FROZEN_MANIFEST = $(MPS2_DIR)/manifest.py

MICROPY_PY_SSL = 1
MICROPY_SSL_MBEDTLS = 1
MBEDTLS_CONFIG_FILE = '"mbedtls_config_board.h"'
MICROPY_VFS_LFS2 = 1
MICROPY_PY_LWIP = 1

# MicroPython heap in KB: like a Pico W's by default, so memory trouble shows up here too.
HEAP_KB ?= 192
ifneq ($(shell echo '$(HEAP_KB)' | grep -Ex '[1-9][0-9]{0,4}'),$(HEAP_KB))
$(error HEAP_KB must be the heap size in kilobytes (a whole number, e.g. 192), not '$(HEAP_KB)')
endif
MICROPY_HEAP_SIZE = $(shell expr $(HEAP_KB) \* 1024)

# TEST-ONLY entropy: mps2 has no random number generator, so this board seeds a predictable
# generator (test_only_insecure_entropy.c). ENTROPY_SEED picks the sequence, so benchmark runs
# can repeat exactly. The macro below is what lets that file compile at all: only this board
# defines it.
ENTROPY_SEED ?= 0
ifneq ($(shell echo '$(ENTROPY_SEED)' | grep -Ex '[0-9]{1,9}'),$(ENTROPY_SEED))
$(error ENTROPY_SEED must be a whole number below 10^9 (e.g. 0 or 42), not '$(ENTROPY_SEED)')
endif
CFLAGS += -DNETSEC_QEMU_TEST_ONLY_INSECURE_ENTROPY=1 -DNETSEC_TEST_ONLY_ENTROPY_SEED=$(ENTROPY_SEED)ULL

SRC_C += \
	shared/timeutils/timeutils.c \
	$(addprefix $(MPS2_DIR)/,\
		board.c \
		ticks.c \
		uart_stdin.c \
		rtc.c \
		ramdisk.c \
		mbedtls_time.c \
		test_only_insecure_entropy.c \
		lan9118.c \
		lwip_heap.c \
		network_lan.c \
		) \
	$(MPS2_DIR)/../../firmware/mbedtls/netsec_alloc.c

# The port's stdin busy-polls the UART and tells select/poll that nothing is ever readable.
# Send those two calls to this board's interrupt-driven receive buffer instead (uart_stdin.c).
LDFLAGS += -Wl,--wrap=mp_hal_stdin_rx_chr -Wl,--wrap=mp_hal_stdio_poll
# lwIP's buffers are in the heap (lwip_heap.c): it lets go of them before a soft reset sweeps
# the heap, and its timers never start a garbage collection.
LDFLAGS += -Wl,--wrap=gc_sweep_all -Wl,--wrap=sys_check_timeouts

# HEAP_KB and ENTROPY_SEED reach the code as -D flags, which make cannot see: record them in a
# file that changes only when they do, and rebuild the two objects that use them.
NETSEC_BUILD_OPTIONS = $(BUILD)/netsec-build-options.txt
$(NETSEC_BUILD_OPTIONS): FORCE
	$(Q)mkdir -p $(@D)
	$(Q)echo "HEAP_KB=$(HEAP_KB) ENTROPY_SEED=$(ENTROPY_SEED)" > $@.new
	$(Q)if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
$(BUILD)/main.o $(addprefix $(BUILD)/,$(MPS2_DIR)/test_only_insecure_entropy.o): $(NETSEC_BUILD_OPTIONS)

# Speed-critical mbedTLS files at -O2 (the profile's choice, shared by every image).
include $(MPS2_DIR)/../../firmware/mbedtls/speed.mk
# The mbedTLS sources the profile needs beyond MicroPython's list (PSA crypto, TLS 1.3).
include $(MPS2_DIR)/../../firmware/mbedtls/sources.mk
