# netsec's rp2 images: the port's own modules (_boot.py mounts the filesystem, rp2.py), asyncio,
# and what every netsec image freezes. Not the port's boards/manifest.py: it requires
# micropython-lib drivers, which are not among the pinned sources.
freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
include("$(BOARD_DIR)/../manifest.py")
