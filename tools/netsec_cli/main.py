"""netsec host CLI: certificates, Net_Security modules, firmware images.

Commands are a table; each is a module with HELP, DESCRIPTION, EPILOG, add_arguments(parser) and
run(args) -> exit status.
"""
import argparse
import sys
import warnings

from cryptography.utils import CryptographyDeprecationWarning

from . import clock, convert, deploy, flash, inspect, keygen, problems

COMMANDS = {"keygen": keygen, "convert": convert, "inspect": inspect, "deploy": deploy,
            "flash": flash, "clock": clock}

DESCRIPTION = """\
Host tool for netsec firmware: make certificates, turn PEM/DER files into the
Net_Security module that is frozen into the image, inspect the result, flash
an image to a board and deploy new credentials to it.

Typical use:
  netsec keygen -o certs --host device.local
  netsec convert --server-cert certs/server.pem --server-key certs/server-key.pem \\
                 --ca certs/ca.pem --host device.local -o build/Net_Security.py
  netsec inspect build/Net_Security.py"""


def parser():
    top = argparse.ArgumentParser(prog="netsec", description=DESCRIPTION,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        sub = commands.add_parser(name, help=command.HELP, description=command.DESCRIPTION,
                                  epilog=command.EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_arguments(sub)
    return top


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv  # convert records the command that made a module
    problems.prog = "netsec " + args.command
    # System CA bundles hold old certificates that cryptography frowns upon (e.g. zero serials);
    # netsec itself reports what matters for the firmware.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    try:
        return COMMANDS[args.command].run(args)
    except problems.CliError as e:
        print("%s: error: %s" % (problems.prog, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("%s: interrupted" % problems.prog, file=sys.stderr)
        return 130
