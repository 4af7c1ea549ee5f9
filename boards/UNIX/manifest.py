# The host image: MicroPython's asyncio plus everything every netsec image freezes.
include("$(MPY_DIR)/extmod/asyncio")
include("$(BOARD_DIR)/../manifest.py")
