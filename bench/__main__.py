"""`make bench` / `python -m bench [NAME ...]`: run the benchmarks and print their tables.

Each bench/bench_<area>.py has a ``main(argv)`` that prints a Rich table.
"""

import importlib
import pkgutil
import sys
from pathlib import Path

names = sys.argv[1:] or sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                               if m.name.startswith("bench_"))
for name in names:
    print(f"\n== bench {name} ==", flush=True)
    importlib.import_module(f"bench.bench_{name}").main([])
