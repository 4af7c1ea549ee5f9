# netsec: the one entry point. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
SOURCES ?= debian
JOBS ?= $(shell nproc)

MP := build/src/micropython
MP_ABS := $(abspath $(MP))
MPY_CROSS := build/mpy-cross/mpy-cross

# Which Net_Security.py is frozen into the images: NET_SECURITY=FILE, remembered in
# CREDENTIALS_CHOICE so that later builds keep it; NET_SECURITY=default (or never choosing) for the
# public test credentials. Every image build says which it froze in (netsec_cli.stage).
NET_SECURITY ?=
CREDENTIALS_CHOICE ?= $(abspath build/credentials-choice)
UNIX_BUILD ?= $(abspath build/unix)
QEMU_BOARD ?= MPS2_AN385
# Every QEMU image `make images` builds: Cortex-M3 (mps2-an385) and Cortex-M4 (mps2-an386).
QEMU_BOARDS := MPS2_AN385 MPS2_AN386
QEMU_BUILD ?= $(abspath build/qemu/$(QEMU_BOARD))
# The HTTPS port of `make run`'s demo on 127.0.0.1.
RUN_PORT ?= 8443
# Real boards (boards/<BOARD>, firmware/boards.py): `make board BOARD=...` builds one into
# build/boards/<BOARD>/ (firmware.uf2 / firmware.elf for rp2, firmware.dfu / firmware.hex for STM32).
BOARD ?= RPI_PICO
BOARD_BUILD = $(abspath build/boards/$(BOARD))
PICOTOOL_BUILD := $(abspath build/picotool)
# Where the pico-sdk finds it (picotoolConfig.cmake) and the tool itself: install/picotool/picotool.
PICOTOOL_DIR := $(PICOTOOL_BUILD)/install/picotool
# MicroPython heap of the QEMU image in KB: like a Pico W's, so memory trouble shows up here.
HEAP_KB ?= 192

# MicroPython's version script must not mistake this project's git repo for its own.
export GIT_CEILING_DIRECTORIES := $(abspath build/src)

# $(1): the image's build directory; its copy of the chosen module is $(1)/credentials.
define stage-net-security
	@$(VPY) -m netsec_cli.stage $(1) --choice "$(CREDENTIALS_CHOICE)" --net-security "$(NET_SECURITY)"
endef

.PHONY: help deps system-deps venv sources mpy-cross unix qemu-image qemu-images images run run-unix qemu \
        picotool board boards test test-host test-device test-qemu test-hw test-boards bench clean

help:
	@echo "make run      the HTTPS demo served by the QEMU Cortex-M3 image (lwIP), default credentials"
	@echo "make run-unix the same demo served by the host (unix) image"
	@echo "make test     install what is needed, build the images and run every test layer"
	@echo "make test-host | test-device | test-qemu | test-boards   one layer alone"
	@echo "make test-hw DEVICE=/dev/ttyACM0 [DEVICE_IP=...]   the hardware layer on a board"
	@echo "make unix | qemu-image   build one image;  make qemu   boot the QEMU image on a pty"
	@echo "make boards   every real board the fetched sources allow (SOURCES=git: all of them)"
	@echo "make board BOARD=RPI_PICO_W   one real board, into build/boards/RPI_PICO_W/"
	@echo "make bench    benchmarks (results into build/bench/)"

## Installing what is needed ---------------------------------------------------------------
deps: system-deps venv

system-deps:
	@firmware/install-deps.sh

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

## Firmware ----------------------------------------------------------------------------------
sources: system-deps
	@SOURCES=$(SOURCES) $(PYTHON) firmware/fetch.py

mpy-cross: sources
	@$(MAKE) -s -j$(JOBS) -C $(MP)/mpy-cross BUILD=$(abspath build/mpy-cross)

unix: venv mpy-cross
	$(call stage-net-security,$(UNIX_BUILD))
	@NETSEC_NET_SECURITY=$(UNIX_BUILD)/credentials/Net_Security.py $(MAKE) -s -j$(JOBS) -C $(MP)/ports/unix \
	    VARIANT_DIR=$(abspath boards/UNIX) BOARD_DIR=$(abspath boards/UNIX) \
	    BUILD=$(UNIX_BUILD) MICROPY_MPYCROSS=$(abspath $(MPY_CROSS))
	@echo "unix image: $(UNIX_BUILD)/micropython"

qemu-image: venv mpy-cross
	$(call stage-net-security,$(QEMU_BUILD))
	@NETSEC_NET_SECURITY=$(QEMU_BUILD)/credentials/Net_Security.py $(MAKE) -s -j$(JOBS) -C $(MP)/ports/qemu \
	    BOARD=$(QEMU_BOARD) BOARD_DIR=$(abspath boards/QEMU_$(QEMU_BOARD)) \
	    BUILD=$(QEMU_BUILD) MICROPY_MPYCROSS=$(abspath $(MPY_CROSS)) HEAP_KB=$(HEAP_KB)
	@echo "QEMU image: $(QEMU_BUILD)/firmware.elf"

qemu-images: mpy-cross
	@for board in $(QEMU_BOARDS); do $(MAKE) -s qemu-image QEMU_BOARD=$$board || exit; done

images: unix qemu-images

# picotool, which the pico-sdk runs at build time (UF2 and binary info), built for this host from
# its pinned source. No USB support: it is a build tool here.
picotool: sources
	@[ -f $(PICOTOOL_BUILD)/Makefile ] || cmake -S build/src/picotool -B $(PICOTOOL_BUILD) \
	    -DPICO_SDK_PATH=$(MP_ABS)/lib/pico-sdk -DPICOTOOL_NO_LIBUSB=1 -DCMAKE_BUILD_TYPE=Release \
	    -DPICOTOOL_FLAT_INSTALL=1 -DCMAKE_INSTALL_PREFIX=$(PICOTOOL_BUILD)/install >/dev/null
	@$(MAKE) -s -C $(PICOTOOL_BUILD) -j$(JOBS) picotool >/dev/null
	@cmake --install $(PICOTOOL_BUILD) >/dev/null

board: mpy-cross
	@$(PYTHON) firmware/boards.py check $(BOARD)
	$(call stage-net-security,$(BOARD_BUILD))
	@$(MAKE) -s board-$$($(PYTHON) firmware/boards.py port $(BOARD))
	@echo "$(BOARD) image: $(BOARD_BUILD)/$$(cd $(BOARD_BUILD) && ls firmware.uf2 firmware.dfu 2>/dev/null)"

board-rp2: picotool
	@[ -f $(BOARD_BUILD)/Makefile ] || MICROPY_MPYCROSS=$(abspath $(MPY_CROSS)) cmake -S $(MP)/ports/rp2 \
	    -B $(BOARD_BUILD) -DMICROPY_BOARD=$(BOARD) -DMICROPY_BOARD_DIR=$(abspath boards/$(BOARD)) \
	    -DPICO_BUILD_DOCS=0 -Dpicotool_DIR=$(PICOTOOL_DIR) -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	@MICROPY_MPYCROSS=$(abspath $(MPY_CROSS)) NETSEC_NET_SECURITY=$(BOARD_BUILD)/credentials/Net_Security.py \
	    $(MAKE) -s -C $(BOARD_BUILD) -j$(JOBS)

board-stm32:
	@NETSEC_NET_SECURITY=$(BOARD_BUILD)/credentials/Net_Security.py $(MAKE) -s -j$(JOBS) -C $(MP)/ports/stm32 \
	    BOARD_DIR=$(abspath boards/$(BOARD)) BUILD=$(BOARD_BUILD) MICROPY_MPYCROSS=$(abspath $(MPY_CROSS))

boards: mpy-cross
	@for board in $$($(PYTHON) firmware/boards.py buildable); do $(MAKE) -s board BOARD=$$board || exit; done

## Running -----------------------------------------------------------------------------------
run: deps qemu-image
	@$(VPY) -m netsec_cli.run --port $(RUN_PORT) --image $(QEMU_BUILD)/firmware.elf

run-unix: deps unix
	@$(VPY) -m netsec_cli.run --host-image --port $(RUN_PORT) --image $(UNIX_BUILD)/micropython

qemu: deps qemu-image
	@$(VPY) -m netsec_cli.qemu --image $(QEMU_BUILD)/firmware.elf

## Tests -------------------------------------------------------------------------------------
# The tests and benchmarks are written for the public test credentials: their images freeze those
# in (and so do the test fixtures' builds), and a NET_SECURITY choice stays remembered for the next
# plain build. Exported, so that the recursive builds (qemu-images, boards) take it too.
test test-device test-qemu test-hw test-boards bench: override export NET_SECURITY = tests

test: deps images boards
	$(VPY) -m pytest -q tests

test-host: venv
	$(VPY) -m pytest -q tests/host tests/portable

test-device: deps unix
	$(VPY) -m pytest -q tests/device

test-qemu: deps qemu-images
	$(VPY) -m pytest -q tests/qemu

# The hardware layer on the board at DEVICE (its serial port); without DEVICE on the QEMU image.
# DEVICE_IP (the board's address) adds the network tests.
test-hw: deps $(if $(DEVICE),,qemu-image)
	DEVICE="$(DEVICE)" DEVICE_IP="$(DEVICE_IP)" $(VPY) -m pytest -q tests/hw

test-boards: deps boards
	$(VPY) -m pytest -q tests/boards

bench: deps images boards
	@$(MAKE) -s qemu-image QEMU_BOARD=MPS2_AN385_ARMV6M
	$(VPY) bench/run.py

clean:
	rm -rf build/unix build/qemu build/mpy-cross build/bench build/boards build/picotool
