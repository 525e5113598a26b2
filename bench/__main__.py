"""`make bench` / `python -m bench [NAME ...] [OPTIONS]`: run the benchmarks and print their tables.

Each bench/bench_<area>.py has a ``main(argv)`` that prints a Rich table; options after the names
(``python -m bench export --quick``) go to each named benchmark.
"""

import importlib
import pkgutil
import sys
from pathlib import Path

if __name__ == "__main__":  # not when a spawned process (the G2P pool of the corpus benchmarks) imports it
    args = sys.argv[1:]
    split = next((i for i, a in enumerate(args) if a.startswith("-")), len(args))
    names, options = args[:split], args[split:]
    names = names or sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                            if m.name.startswith("bench_"))
    for name in names:
        print(f"\n== bench {name} ==", flush=True)
        importlib.import_module(f"bench.bench_{name}").main(options)
