# The logger netsec's services share: one line per event, on the console unless told otherwise.
#   from netsec import log
#   log.level = log.WARNING        # drop INFO lines
#   log.output = my_function       # any callable taking one str (e.g. append to a file on flash)

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}

level = INFO
output = print


def _emit(severity, message):
    if severity >= level:
        output(_NAMES[severity] + " " + message)


def debug(message):
    _emit(DEBUG, message)


def info(message):
    _emit(INFO, message)


def warning(message):
    _emit(WARNING, message)


def error(message):
    _emit(ERROR, message)
