"""`python -m launcher demo [...]`: run the whole pipeline locally (see `make demo`)."""

import sys

from launcher.demo import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args in (["--help"], ["-h"]):
        print("usage: python -m launcher demo [--help]: the whole pipeline as local processes")
        sys.exit(0)
    if not args or args[0] != "demo":
        print("usage: python -m launcher demo [--help]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(args[1:]))
