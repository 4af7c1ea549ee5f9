# Frozen into every netsec image: the device package and one Net_Security module.
# NETSEC_NET_SECURITY (set by the Makefile's NET_SECURITY) names the Net_Security.py to freeze;
# by default the public test credentials in modules/.
import os

_modules = "$(BOARD_DIR)/../../modules"
package("netsec", base_path=_modules, opt=3)

_net_security = os.environ.get("NETSEC_NET_SECURITY") or _modules + "/Net_Security.py"
if os.path.basename(_net_security) != "Net_Security.py":
    raise SystemExit("NET_SECURITY must name a file called Net_Security.py, not " + _net_security)
module("Net_Security.py", base_path=os.path.dirname(_net_security), opt=3)
