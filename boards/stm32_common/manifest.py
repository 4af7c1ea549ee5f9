# netsec's STM32 images: asyncio and what every netsec image freezes. Not the port's
# boards/manifest.py and the boards' "bundle-networking": they require micropython-lib packages,
# which are not among the pinned sources.
include("$(MPY_DIR)/extmod/asyncio")
include("$(BOARD_DIR)/../manifest.py")
