"""Dispatch ``python -m bench <name> ...`` to ``bench/<name>.py``'s ``main(argv)``."""
import importlib
import pkgutil
import sys

import bench


def available():
    """Benchmark names: the modules of ``bench/`` with "-" for "_" (``align_eval`` -> ``align-eval``), less the
    helpers (leading "_") and the reference implementations (``*_upstream``)."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(bench.__path__)
                  if not m.name.startswith("_") and not m.name.endswith("_upstream"))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench {" + ",".join(names) + "} [options]")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in names:
        print(f"Unknown benchmark '{name}'. Available: {', '.join(names)}", file=sys.stderr)
        return 2
    return importlib.import_module(f"bench.{name.replace('-', '_')}").main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
