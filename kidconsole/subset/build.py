"""The whole subset build: read the manifest, pick the splits, write manifests and the report.

Layout of the output folder (others read these names; see docs/subsets.md):
``train.jsonl``, ``validation.jsonl``, ``test.jsonl``, ``validation_sample.jsonl``,
``train_phase1.jsonl`` ... (one per curriculum fraction, nested, the last equals
train), ``report.md``, ``report.json``, ``subset.yaml``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numpy as np
import yaml

from kidconsole import __version__
from kidconsole.errors import KidconsoleError
from kidconsole.subset.curriculum import check_fractions, curriculum_phases
from kidconsole.subset.exclude import excluded_rows
from kidconsole.subset.options import PARAMETER_NAMES
from kidconsole.subset.report import SPLIT_NAMES, SubsetResult, cell_hours, marginals, split_stats, write_reports
from kidconsole.subset.sample import stratified_sample
from kidconsole.subset.select import make_pool, select_split
from kidconsole.subset.strata import (
    DEFAULT_AGE_EDGES, DEFAULT_DURATION_EDGES, DEFAULT_SNR_EDGES, DIMENSIONS, Strata, check_edges,
)
from kidconsole.subset.table import Table, load_table

DEFAULT_SHARES = (0.915, 0.052, 0.033)
DEFAULT_FRACTIONS = (0.2, 0.6, 1.0)
# A stratum this big (share of the corpus's hours) that a split's pool lacks
# entirely makes the request impossible; a smaller one is only a warning.
MISSING_STRATUM_SHARE = 0.015
COPY_CHUNK_ROWS = 200_000

ProgressFn = Callable[[str, float], None]


def phase_name(i: int) -> str:
    return f"train_phase{i}"


def output_names(n_fractions: int) -> list[str]:
    """Output manifests in the order they are reported."""
    return [*SPLIT_NAMES, "validation_sample", *(phase_name(i + 1) for i in range(n_fractions))]


def _three(values, name: str, what: str) -> np.ndarray:
    """Three non-negative numbers (train/validation/test), not all zero, or an error naming ``name``."""
    try:
        out = np.array([float(v) for v in values])
    except (TypeError, ValueError) as e:
        raise KidconsoleError(f"{name}: expected three {what} (train/validation/test), got {values!r}") from e
    if len(out) != 3 or (out < 0).any() or not np.isfinite(out).all() or out.sum() <= 0:
        raise KidconsoleError(f"{name}: expected three non-negative {what} (train/validation/test), "
                              f"got {list(values)}")
    return out


def _check_shares(split_shares, name: str) -> np.ndarray:
    shares = _three(split_shares, name, "numbers")
    if abs(shares.sum() - 1) > 1e-3:
        raise KidconsoleError(f"{name}: train/validation/test shares must add up to 1, got {shares.sum():g}")
    return shares / shares.sum()


class _Progress:
    """Rich progress bars on stderr and/or a callback ``(stage, fraction)``."""

    STAGES = ("reading manifest", "selecting", "writing manifests")

    def __init__(self, show: bool, callback: ProgressFn | None):
        self.callback, self.bar, self.tasks = callback, None, {}
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("{task.description:<18}"), BarColumn(), TaskProgressColumn(),
                                TimeElapsedColumn(), console=Console(stderr=True))

    @contextmanager
    def running(self) -> Iterator["_Progress"]:
        if self.bar is None:
            yield self
            return
        with self.bar:
            self.tasks = {s: self.bar.add_task(s, total=1.0) for s in self.STAGES}
            yield self

    def __call__(self, stage: str, fraction: float) -> None:
        if self.bar is not None:
            self.bar.update(self.tasks[stage], completed=fraction)
        if self.callback is not None:
            self.callback(stage, fraction)


def _leaking_speakers(table: Table) -> tuple[np.ndarray, int, float]:
    """Rows to drop so no speaker spans two source splits (each keeps the split with most of its hours)."""
    per = np.bincount(table.speaker.astype(np.int64) * 3 + table.split, weights=table.duration,
                      minlength=len(table.speakers) * 3).reshape(-1, 3)
    home = per.argmax(axis=1)
    drop = table.split != home[table.speaker]
    n_speakers = int(((per > 0).sum(axis=1) > 1).sum())
    return drop, n_speakers, float(table.duration[drop].sum() / 3600)


def _check_pool(name: str, pool_name: str, rows: np.ndarray, cell: np.ndarray, duration: np.ndarray,
                corpus_share: np.ndarray, strata: Strata, hint: str, warnings: list[str]) -> None:
    """A stratum of the corpus with no speakers in the pool: an error when big, a warning when small."""
    have = marginals(cell_hours(rows, cell, duration, strata.n_cells), strata)
    want = marginals(corpus_share, strata)
    for dim in DIMENSIONS:
        for i, label in enumerate(strata.labels(dim)):
            if want[dim][i] > 0 and have[dim][i] == 0:
                what = (f"stratum {dim} {label} ({want[dim][i] * 100:.2f}% of the corpus's hours) has no "
                        f"speakers in the {pool_name} pool, so {name} cannot have it")
                if want[dim][i] > MISSING_STRATUM_SHARE:
                    raise KidconsoleError(f"{what}; {hint}")
                warnings.append(what)


def build_subset(
    manifest: Path,
    out_dir: Path,
    *,
    hours: float | None = None,
    split_hours: tuple[float, float, float] | None = None,
    split_shares=DEFAULT_SHARES,
    fractions=DEFAULT_FRACTIONS,
    max_val_samples: int | None = 20000,
    seed: int = 0,
    age_edges=DEFAULT_AGE_EDGES,
    snr_edges=DEFAULT_SNR_EDGES,
    duration_edges=DEFAULT_DURATION_EDGES,
    use_source_splits: bool = True,
    progress: bool = True,
    on_progress: ProgressFn | None = None,
    names: Mapping[str, str] = PARAMETER_NAMES,
    exclude: str | Path | None = None,
) -> SubsetResult:
    """Build speaker-disjoint, stratified train/validation/test subsets of ``manifest`` into ``out_dir``.

    ``hours`` (total, split by ``split_shares``) or ``split_hours`` (per split)
    set the targets; with neither, the subset takes as much as the pools can
    give at ``split_shares``. Raises ``KidconsoleError`` when the request is
    impossible. ``on_progress(stage, fraction)`` reports progress to a caller
    (the console); ``progress`` shows Rich bars on stderr. ``names`` maps each
    option (and the remedies "pool" and "edges") to what the caller calls it, so
    errors speak the caller's terms (``options.CLI_NAMES`` for the command line). ``exclude``: a file of
    ids (the suspects of ``kidconsole audit``) whose rows are left out, counted in the report.
    """
    started = time.perf_counter()

    def n(key: str) -> str:
        return names.get(key, key)

    manifest, out_dir = Path(manifest), Path(out_dir)
    if hours is not None and split_hours is not None:
        raise KidconsoleError(f"give either {n('hours')} (split by {n('split_shares')}) or {n('split_hours')}, "
                              "not both")
    if hours is not None and not (np.isfinite(hours) and hours > 0):
        raise KidconsoleError(f"{n('hours')}: expected a positive number of hours, got {hours!r}")
    shares = _check_shares(split_shares, n("split_shares"))
    wanted_hours = _three(split_hours, n("split_hours"), "numbers of hours") if split_hours is not None else None
    fractions = check_fractions(fractions, n("fractions"))
    if max_val_samples is not None and (isinstance(max_val_samples, bool) or int(max_val_samples) != max_val_samples
                                        or max_val_samples < 1):
        raise KidconsoleError(f"{n('max_val_samples')}: expected a positive whole number or none, "
                              f"got {max_val_samples!r}")
    strata = Strata(*(check_edges(n(key), edges) for key, edges in
                      (("age_edges", age_edges), ("snr_edges", snr_edges), ("duration_edges", duration_edges))))
    warnings: list[str] = []
    bars = _Progress(progress, on_progress)

    with bars.running():
        table = load_table(manifest, on_progress=lambda f: bars("reading manifest", f))
        if len(table) == 0:
            why = f"; first problems: {'; '.join(table.skipped_examples[:3])}" if table.skipped else ""
            raise KidconsoleError(f"{manifest}: no usable manifest rows{why}")
        if table.skipped:
            warnings.append(f"skipped {table.skipped:,} malformed manifest rows (examples in the report)")
        cell = strata.cells(table.age, table.snr, table.duration)
        duration = table.duration
        corpus_hours = cell_hours(np.arange(len(table)), cell, duration, strata.n_cells)
        corpus_share = corpus_hours / corpus_hours.sum()
        total_h = corpus_hours.sum() / 3600

        seeds = np.random.SeedSequence(seed).spawn(4)
        n_spk = len(table.speakers)
        rank = np.empty(n_spk, dtype=np.int64)  # seeded speaker order, independent of row order
        rank[np.array(sorted(range(n_spk), key=table.speakers.__getitem__), dtype=np.int64)
             [np.random.default_rng(seeds[0]).permutation(n_spk)]] = np.arange(n_spk)
        tiebreak = np.random.default_rng(seeds[1]).random(len(table))
        phase_key = np.random.default_rng(seeds[2]).random(len(table))
        sample_key = np.random.default_rng(seeds[3]).random(len(table))

        usable = np.ones(len(table), dtype=bool)
        excluded = None
        if exclude is not None:
            mask, excluded = excluded_rows(manifest, table.offset, duration, exclude)
            usable &= ~mask
        if use_source_splits:
            drop, n_leak, leak_h = _leaking_speakers(table)
            if n_leak:
                usable &= ~drop
                warnings.append(f"{n_leak:,} speakers appear in more than one source split; each was kept in the "
                                f"split holding most of its hours ({leak_h:.2f} h left out)")
            pools_h = np.bincount(table.split[usable], weights=duration[usable], minlength=3) / 3600
        else:
            pools_h = np.array([duration[usable].sum() / 3600, 0.0, 0.0])

        # targets, in hours
        if wanted_hours is not None:
            targets = wanted_hours
        elif hours is not None:
            targets = hours * shares
        elif use_source_splits:
            live = shares > 0
            targets = shares * float(np.min(pools_h[live] / shares[live]))
        else:
            targets = shares * total_h
        if targets.sum() > total_h * (1 + 1e-9):
            raise KidconsoleError(f"asked for {targets.sum():.2f} h but {manifest} holds only {total_h:.2f} h")
        if use_source_splits:
            for s, name in enumerate(SPLIT_NAMES):
                if targets[s] > pools_h[s] * (1 + 1e-9):
                    raise KidconsoleError(
                        f"{name} needs {targets[s]:.2f} h but the source {name} split holds only {pools_h[s]:.2f} h; "
                        f"lower {n('hours')}, change {n('split_shares')}, or pool the source splits ({n('pool')})")

        selected: dict[str, np.ndarray] = {}
        final_targets: dict[str, float] = {}
        taken = np.zeros(n_spk, dtype=bool)
        cells_per_group = strata.n_cells // strata.sizes[0]
        # small splits first: in a shared pool they must not be left with only odd speakers
        for s in sorted(range(3), key=lambda s: targets[s]):
            name = SPLIT_NAMES[s]
            target = float(targets[s])
            if target <= 0:
                selected[name], final_targets[name] = np.zeros(0, dtype=np.int64), 0.0
                continue
            if use_source_splits:
                rows = np.flatnonzero(usable & (table.split == s))
                pool_name, hint = f"source {name}", (f"merge it into a neighbouring bucket ({n('edges')}) or pool "
                                                     f"the source splits ({n('pool')})")
            else:
                rows = np.flatnonzero(usable & ~taken[table.speaker])
                pool_name, hint = "remaining", f"merge it into a neighbouring bucket ({n('edges')})"
                left_h = duration[rows].sum() / 3600
                if target > left_h * (1 + 1e-9):
                    if hours is None and split_hours is None:
                        target = float(left_h)  # "all of it": the last split takes what the others left
                    else:
                        raise KidconsoleError(
                            f"{name} needs {target:.2f} h but only {left_h:.2f} h of speakers are left after the "
                            f"other splits took theirs; lower {n('hours')}")
            _check_pool(name, pool_name, rows, cell, duration, corpus_share, strata, hint, warnings)
            pool = make_pool(rows, table.speaker, cell, duration, strata.n_cells, cells_per_group, rank)
            chosen = select_split(pool, corpus_share, target * 3600, speaker=table.speaker, cell=cell,
                                  duration=duration, cells_per_group=cells_per_group, tiebreak=tiebreak)
            taken[table.speaker[chosen]] = True
            selected[name], final_targets[name] = chosen, target
            bars("selecting", (len(selected)) / 5)

        selected = {k: selected[k] for k in SPLIT_NAMES}
        selected["validation_sample"] = stratified_sample(selected["validation"], cell, max_val_samples, sample_key)
        for i, rows in enumerate(curriculum_phases(selected["train"], cell, duration, fractions, phase_key)):
            selected[phase_name(i + 1)] = rows
        bars("selecting", 1.0)

        out_dir.mkdir(parents=True, exist_ok=True)
        files = {name: out_dir / f"{name}.jsonl" for name in selected}
        copy_lines(table, {files[k]: v for k, v in selected.items()}, lambda f: bars("writing manifests", f))

        options = {
            "manifest": str(manifest),
            "hours": hours,
            "split_hours": [float(h) for h in wanted_hours] if wanted_hours is not None else None,
            "split_shares": [float(s) for s in shares],
            "target_hours": {k: round(float(v), 6) for k, v in final_targets.items()},
            "fractions": list(fractions),
            "max_val_samples": max_val_samples,
            "seed": seed,
            **strata.as_dict(),
            "use_source_splits": use_source_splits,
            "exclude": str(exclude) if exclude is not None else None,
            "kidconsole_version": __version__,
        }
        (out_dir / "subset.yaml").write_text(yaml.safe_dump(options, sort_keys=False, allow_unicode=True),
                                             encoding="utf-8")
        stats = dict(cell=cell, duration=duration, speaker=table.speaker, strata=strata)
        outputs = {}
        for name, rows in selected.items():
            target = final_targets.get(name)
            if name.startswith("train_phase"):
                target = final_targets["train"] * fractions[int(name[len("train_phase"):]) - 1]
            outputs[name] = split_stats(name, rows, corpus_hours=corpus_hours, target_hours=target, **stats)
        result = SubsetResult(
            out_dir=out_dir, manifest=manifest, options=options,
            corpus=split_stats("corpus", np.arange(len(table)), corpus_hours=None, **stats),
            outputs=outputs, files=files, skipped=table.skipped, skipped_examples=table.skipped_examples,
            warnings=warnings, seconds=time.perf_counter() - started,
            excluded=asdict(excluded) if excluded is not None else None,
        )
        write_reports(result)
    return result


def copy_lines(table: Table, outputs: dict[Path, np.ndarray], on_progress: Callable[[float], None]) -> None:
    """Write each output's rows (sorted table indices) as the manifest's own lines, in one pass.

    Lines that follow each other in the manifest are written as one slice.
    Each file is written to a temporary name and renamed when whole.
    """
    tmp = {path: path.with_name(path.name + ".tmp") for path in outputs}
    handles = {path: tmp[path].open("wb") for path in outputs}
    n = len(table)
    try:
        with table.path.open("rb") as src:
            for i0 in range(0, n, COPY_CHUNK_ROWS):
                i1 = min(n, i0 + COPY_CHUNK_ROWS)
                wanted = {p: rows[np.searchsorted(rows, i0):np.searchsorted(rows, i1)] for p, rows in outputs.items()}
                if any(len(r) for r in wanted.values()):
                    start = int(table.offset[i0])
                    src.seek(start)
                    buf = memoryview(src.read(int(table.offset[i1 - 1] + table.length[i1 - 1]) - start))
                    for path, rows in wanted.items():
                        if not len(rows):
                            continue
                        a = table.offset[rows] - start
                        b = a + table.length[rows]
                        cut = np.flatnonzero(a[1:] != b[:-1]) + 1  # where a run of touching lines ends
                        runs = zip(a[np.r_[0, cut]].tolist(), b[np.r_[cut - 1, len(a) - 1]].tolist())
                        handles[path].writelines([buf[x:y] for x, y in runs])
                        if rows[-1] == n - 1 and buf[-1:] != b"\n":  # the manifest's last line lacks its newline
                            handles[path].write(b"\n")
                on_progress(i1 / n)
    except BaseException:
        for path in outputs:
            handles[path].close()
            tmp[path].unlink(missing_ok=True)
        raise
    for path in outputs:
        handles[path].close()
        tmp[path].replace(path)
