"""netsec: secure network services (HTTPS server, SMTPS client) for MicroPython."""

__version__ = "0.1.0"
