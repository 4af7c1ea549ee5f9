# The QEMU image: MicroPython's asyncio plus everything every netsec image freezes.
# (No micropython-lib packages: that library is not part of the pinned sources.)
include("$(MPY_DIR)/extmod/asyncio")
include("$(BOARD_DIR)/../manifest.py")
