"""``python -m benchmarks [--quick] [--only NAME]``: run the benchmark modules, print a table.

A module that fails is reported with its error and the others still run; the exit code is 1
when any module failed.
"""

import argparse
import sys
import time
import traceback

from benchmarks import load, module_names
from benchmarks.common import Result, format_table


def run_modules(names: list[str], quick: bool) -> tuple[list[Result], dict[str, str]]:
    """Results of every module in ``names`` and the error of each module that failed."""
    results: list[Result] = []
    errors: dict[str, str] = {}
    for name in names:
        start = time.perf_counter()
        print(f"running {name}{' (quick)' if quick else ''} ...", file=sys.stderr, flush=True)
        main_module = sys.modules["__main__"]
        try:
            module_results = list(load(name).run(quick=quick))
            if not all(isinstance(r, Result) for r in module_results):
                raise TypeError("run() must return a list of benchmarks.common.Result")
        except Exception as exc:  # one broken benchmark must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
            continue
        finally:
            # Streamlit's AppTest replaces __main__ for good; spawned processes re-import it.
            sys.modules["__main__"] = main_module
        results += module_results
        print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    return results, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny workloads (seconds)")
    parser.add_argument(
        "--only", metavar="NAME", action="append",
        help="run only the modules whose name contains NAME (repeatable), e.g. dataloader",
    )  # fmt: skip
    args = parser.parse_args(argv)
    names = module_names()
    if args.only:
        names = [n for n in names if any(part in n for part in args.only)]
        if not names:
            print(f"error: no benchmark matches {args.only}; have: {', '.join(module_names())}",
                  file=sys.stderr)  # fmt: skip
            return 2
    results, errors = run_modules(names, args.quick)
    print(format_table(results))
    for name, error in errors.items():
        print(f"FAILED {name}: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
