"""netsec host CLI: certificates, Net_Security modules, firmware images."""
