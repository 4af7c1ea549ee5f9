"""How the CLI reports problems: one-line errors naming the thing and the fix; warnings."""
import sys

# Set by main to "netsec <command>" so every message says which command spoke.
prog = "netsec"


class CliError(Exception):
    """A refusal: `where` is the file (or option) at fault, `what` the problem, `fix` what to do."""
    def __init__(self, where, what, fix):
        super().__init__(where, what, fix)
        self.where, self.what, self.fix = where, what, fix

    def __str__(self):
        place = "%s: " % self.where if self.where else ""
        return "%s%s — %s" % (place, self.what, self.fix)


def warn(where, what):
    place = "%s: " % where if where else ""
    print("%s: warning: %s%s" % (prog, place, what), file=sys.stderr)
