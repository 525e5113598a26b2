"""What a subset holds, and how close its shape is to the corpus: report.md + report.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from kidconsole.subset.strata import DIMENSIONS, Strata

SPLIT_NAMES = ("train", "validation", "test")


@dataclass
class SplitStats:
    name: str
    hours: float
    utterances: int
    speakers: int
    target_hours: float | None
    shares: dict[str, dict[str, float]]       # dimension -> bucket label -> share of the hours (0..1)
    deviation_pp: dict[str, float]            # dimension (and "cell") -> max |share - corpus share|, in points

    @property
    def max_deviation_pp(self) -> float:
        return max(self.deviation_pp.values(), default=0.0)

    @property
    def hours_error(self) -> float | None:
        """Relative miss of the target hours (0.01 = 1% over), None without a target."""
        if not self.target_hours:
            return None
        return self.hours / self.target_hours - 1


@dataclass
class SubsetResult:
    out_dir: Path
    manifest: Path
    options: dict                                  # as written to subset.yaml
    corpus: SplitStats
    outputs: dict[str, SplitStats]                 # train, validation, test, validation_sample, train_phase1, ...
    files: dict[str, Path]                         # output name -> manifest path
    skipped: int = 0
    skipped_examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    excluded: dict | None = None                   # --exclude: kidconsole.subset.exclude.Excluded as a dict

    @property
    def splits(self) -> dict[str, SplitStats]:
        return {k: self.outputs[k] for k in SPLIT_NAMES}

    def to_dict(self) -> dict:
        def stats(s: SplitStats) -> dict:
            return {**asdict(s), "max_deviation_pp": s.max_deviation_pp, "hours_error": s.hours_error}

        return {
            "manifest": str(self.manifest),
            "out_dir": str(self.out_dir),
            "options": self.options,
            "corpus": stats(self.corpus),
            "outputs": {k: stats(v) for k, v in self.outputs.items()},
            "files": {k: v.name for k, v in self.files.items()},
            "skipped": self.skipped,
            "skipped_examples": self.skipped_examples,
            "warnings": self.warnings,
            "excluded": self.excluded,
            "seconds": round(self.seconds, 3),
        }


def cell_hours(rows: np.ndarray, cell: np.ndarray, duration: np.ndarray, n_cells: int) -> np.ndarray:
    return np.bincount(cell[rows], weights=duration[rows], minlength=n_cells)


def marginals(hours: np.ndarray, strata: Strata) -> dict[str, np.ndarray]:
    """Hours per bucket of each dimension, from hours per joint cell."""
    cube = hours.reshape(strata.sizes)
    return {"age": cube.sum(axis=(1, 2)), "snr": cube.sum(axis=(0, 2)), "duration": cube.sum(axis=(0, 1))}


def split_stats(name: str, rows: np.ndarray, *, cell: np.ndarray, duration: np.ndarray, speaker: np.ndarray,
                strata: Strata, corpus_hours: np.ndarray | None, target_hours: float | None = None) -> SplitStats:
    """Stats of ``rows``; deviations are measured against ``corpus_hours`` (per cell)."""
    hours = cell_hours(rows, cell, duration, strata.n_cells)
    total = hours.sum()
    share = hours / total if total > 0 else hours
    ref = corpus_hours / corpus_hours.sum() if corpus_hours is not None else share
    marg, ref_marg = marginals(share, strata), marginals(ref, strata)
    shares, deviation = {}, {}
    for dim in DIMENSIONS:
        labels = strata.labels(dim)
        # only buckets present in the corpus (or here) are worth a line
        shares[dim] = {labels[i]: float(marg[dim][i]) for i in range(len(labels))
                       if marg[dim][i] > 0 or ref_marg[dim][i] > 0}
        deviation[dim] = float(np.abs(marg[dim] - ref_marg[dim]).max() * 100) if total > 0 else 0.0
    deviation["cell"] = float(np.abs(share - ref).max() * 100) if total > 0 else 0.0
    return SplitStats(name=name, hours=float(total / 3600), utterances=int(len(rows)),
                      speakers=int(len(np.unique(speaker[rows]))), target_hours=target_hours,
                      shares=shares, deviation_pp=deviation)


def _pct(x: float) -> str:
    return f"{x * 100:.2f}"


def markdown(result: SubsetResult) -> str:
    o = result.options
    pools = ("source split folders as speaker pools" if o.get("use_source_splits")
             else "speakers pooled across source splits")
    lines = [
        "# Subset report",
        "",
        f"Source: `{result.manifest}` ({result.corpus.hours:.2f} h, {result.corpus.utterances:,} utterances, "
        f"{result.corpus.speakers:,} speakers). Seed {o.get('seed')}; "
        f"{pools}.",
        "",
        "Shares are shares of hours. Deviation: the largest gap, in percentage points, between a bucket's share "
        "here and in the corpus (per dimension; \"cell\" is age x SNR x duration).",
        "",
        "| output | target h | hours | miss | utterances | speakers | max dev (pp) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in result.outputs.items():
        target = f"{s.target_hours:.2f}" if s.target_hours else ""
        miss = f"{s.hours_error * 100:+.2f}%" if s.hours_error is not None else ""
        lines.append(f"| {name} | {target} | {s.hours:.2f} | {miss} | {s.utterances:,} | {s.speakers:,} | "
                     f"{s.max_deviation_pp:.2f} |")
    names = list(result.outputs)
    for dim in DIMENSIONS:
        lines += ["", f"## Shares by {dim} (%)", "",
                  "| bucket | corpus | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        for label, ref in result.corpus.shares[dim].items():
            cells = [_pct(result.outputs[n].shares[dim].get(label, 0.0)) for n in names]
            lines.append(f"| {label} | {_pct(ref)} | " + " | ".join(cells) + " |")
        devs = [f"{result.outputs[n].deviation_pp[dim]:.2f}" for n in names]
        lines.append("| max dev (pp) | | " + " | ".join(devs) + " |")
    if result.excluded:
        e = result.excluded
        lines += ["", "## Excluded", "", f"{e['rows']:,} rows ({e['hours']:.2f} h) left out: their ids are listed in "
                  f"`{e['file']}` ({e['ids']:,} ids, {e['not_found']:,} not in the manifest)."]
    if result.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in result.warnings]
    if result.skipped:
        lines += ["", f"## Skipped rows: {result.skipped:,}", ""] + [f"- `{e}`" for e in result.skipped_examples]
    lines += ["", "## Files", ""] + [f"- `{p.name}`: {name}" for name, p in result.files.items()]
    return "\n".join(lines) + "\n"


def write_reports(result: SubsetResult) -> tuple[Path, Path]:
    md, js = result.out_dir / "report.md", result.out_dir / "report.json"
    md.write_text(markdown(result), encoding="utf-8")
    js.write_text(json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return md, js
