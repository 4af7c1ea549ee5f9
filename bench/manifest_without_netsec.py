# The QEMU image as boards/QEMU_MPS2_AN385/manifest.py builds it, minus netsec and
# Net_Security: the footprint row compares the two images.
include("$(MPY_DIR)/extmod/asyncio")
