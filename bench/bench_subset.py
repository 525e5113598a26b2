"""Subset builder at corpus scale: hours on target, strata in shape, time and memory.

A synthetic manifest (metadata only) with AI Hub's split sizes (1,771,800 train,
114,539 validation, 100,660 test utterances; ~3,300 speakers; ~3,500 h) is
built once; each configuration then runs ``build_subset`` in a fresh process,
which reports its wall time and peak memory (ru_maxrss).
Targets: every split within 2% of its hours, every stratum's share within
1.5 points of the corpus's, under 60 s and 3 GB.
``python -m bench subset [--utterances N] [--manifest PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {  # name -> build_subset keyword arguments
    "100 h, source": dict(hours=100.0),
    "1000 h, pooled": dict(hours=1000.0, use_source_splits=False),
    "all, pooled": dict(hours=None, use_source_splits=False),
    # not run by default: validation and test then take ~95% of their source
    # pools, so they keep those pools' own shape (no room to reshape)
    "all, source": dict(hours=None),
}
DEFAULT_CONFIGS = ["100 h, source", "1000 h, pooled", "all, pooled"]
MAX_MISS, MAX_DEV_PP, MAX_SECONDS, MAX_GB = 0.02, 1.5, 60.0, 3.0


def child(manifest: str, out: str, config: str) -> None:
    """Run one build in this (fresh) process and print its figures as JSON."""
    from kidconsole.subset.build import build_subset

    start = time.perf_counter()
    result = build_subset(Path(manifest), Path(out), progress=False, **CONFIGS[config])
    seconds = time.perf_counter() - start
    rows = {name: {"target": s.target_hours, "hours": s.hours, "miss": s.hours_error, "speakers": s.speakers,
                   "utterances": s.utterances, "dev": max(s.deviation_pp[d] for d in ("age", "snr", "duration")),
                   "cell": s.deviation_pp["cell"]}
            for name, s in result.outputs.items()}
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_gb": peak_gb, "rows": rows,
                      "corpus_h": result.corpus.hours, "n": result.corpus.utterances}))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench subset")
    parser.add_argument("--utterances", type=int, default=None,
                        help="rows of the synthetic manifest (default: AI Hub's 1,986,999)")
    parser.add_argument("--manifest", type=Path, help="use this manifest instead of generating one")
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--child", nargs=3, metavar=("MANIFEST", "OUT", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return

    from rich.console import Console
    from rich.table import Table

    from kidconsole.subset.synthetic import AIHUB_SPLIT_SIZES, write_synthetic_manifest

    console = Console(width=max(Console().width, 124))  # the table's width, also when piped
    with tempfile.TemporaryDirectory(prefix="bench-subset-") as tmp:
        manifest = args.manifest
        if manifest is None:
            n = args.utterances or sum(AIHUB_SPLIT_SIZES.values())
            manifest = Path(tmp) / "manifest.jsonl"
            start = time.perf_counter()
            with console.status(f"generating a {n:,}-utterance manifest"):
                write_synthetic_manifest(manifest, n, seed=0)
            console.print(f"generated {n:,} rows ({manifest.stat().st_size / 2**30:.2f} GiB) "
                          f"in {time.perf_counter() - start:.1f} s", highlight=False)
        table = Table(title=f"subset builder ({os.cpu_count()} cores)")
        for col in ("config", "output", "target h", "hours", "miss", "speakers", "dev pp", "cell pp", "build s",
                    "peak GB"):
            table.add_column(col, justify="left" if col in ("config", "output") else "right", no_wrap=True)
        ok, fig = True, None
        for config in args.configs:
            out = Path(tmp) / "out"
            with console.status(f"building: {config}"):
                proc = subprocess.run([sys.executable, "-m", "bench.bench_subset", "--child", str(manifest),
                                       str(out), config], capture_output=True, text=True,
                                      cwd=Path(__file__).resolve().parent.parent)
            if proc.returncode:
                console.print(f"[red]{config} failed:[/]")
                console.print(proc.stderr[-3000:], markup=False, highlight=False)
                ok = False
                continue
            fig = json.loads(proc.stdout.strip().splitlines()[-1])
            first = True
            for name, r in fig["rows"].items():
                miss_ok = r["miss"] is None or abs(r["miss"]) <= MAX_MISS
                dev_ok = r["dev"] <= MAX_DEV_PP and r["cell"] <= MAX_DEV_PP
                ok &= miss_ok and (dev_ok or name == "validation_sample")
                table.add_row(
                    config if first else "", name,
                    f"{r['target']:.2f}" if r["target"] else "", f"{r['hours']:.2f}",
                    "" if r["miss"] is None else f"[{'green' if miss_ok else 'red'}]{r['miss'] * 100:+.2f}%[/]",
                    f"{r['speakers']:,}", f"[{'green' if dev_ok else 'red'}]{r['dev']:.2f}[/]", f"{r['cell']:.2f}",
                    f"{fig['seconds']:.1f}" if first else "", f"{fig['peak_gb']:.2f}" if first else "")
                first = False
            ok &= fig["seconds"] < MAX_SECONDS and fig["peak_gb"] < MAX_GB
            table.add_section()
        console.print(table)
        if fig:
            console.print(f"manifest: {fig['n']:,} utterances, {fig['corpus_h']:,.1f} h. "
                          "dev pp: the largest gap between "
                          "a bucket's share of the hours and the corpus's (over age, SNR and duration buckets); "
                          "cell pp: the same per age x SNR x duration cell.", highlight=False)
        console.print(f"targets: miss <= {MAX_MISS:.0%}, stratum shares within {MAX_DEV_PP} pp of the corpus "
                      f"(max over age, SNR, duration buckets; and per cell), build < {MAX_SECONDS:.0f} s, "
                      f"< {MAX_GB:.0f} GB: {'[green]met[/]' if ok else '[red]NOT met[/]'}")


if __name__ == "__main__":
    main(sys.argv[1:])
