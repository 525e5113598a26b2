"""``kidconsole demo``: the whole mission on a laptop CPU, for real, in minutes.

Synthetic corpus -> index -> adult/child manifests and a child subset -> a tiny
base phoneme model trained on the adults (cached) -> its baseline score on the
children -> two LoRA runs side by side -> the console (or, headless, a live
table) -> per-age / per-SNR reports and the comparison -> the better run
exported to ONNX fp32 and INT8, each scored like a run, and the export table.

Light: no torch here. Heavy work runs in subprocesses only: ``trainers.tiny``,
the run launcher (``trainers.train``, ``trainers.score``), ``kidconsole export``. Decisions and
figures: ``docs/demo.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from kidconsole import palette, rundir
from kidconsole.config_files import packaged_dir
from kidconsole.errors import KidconsoleError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = packaged_dir()  # the shipped configs: a wheel carries them too
BASE_CONFIG = CONFIGS / "demo_base.yaml"
LORA_CONFIG = CONFIGS / "demo_lora.yaml"
ADULT_AGE = 18
TARGET_RATIO = 0.75      # each LoRA run's child PER must be at most this share of the base's
ADULT_PER_TARGET = 0.40  # the base model's PER on the adult test voices
STAMP = "demo-stamp.json"


@dataclass(frozen=True)
class Scale:
    """How big the demo is: corpus size, tiny model geometry and config overrides."""
    name: str
    adults: int
    children_per_age: int
    utterances: int
    tiny: tuple[tuple[str, int | str], ...]    # python -m trainers.tiny options
    base_set: tuple[str, ...] = ()             # --set overrides of configs/demo_base.yaml
    lora_set: tuple[str, ...] = ()             # --set overrides of configs/demo_lora.yaml


# the base model: 3 transformer layers of 96, a 320x feature encoder (50 frames a second, as XLS-R)
TINY = (("hidden", 96), ("layers", 3), ("heads", 4), ("conv", "320x"))

SCALES = {
    "full": Scale("full", adults=8, children_per_age=3, utterances=30, tiny=TINY),
    # CI: the same pipeline, smaller and shorter; still trains, evaluates and compares
    "quick": Scale("quick", adults=8, children_per_age=3, utterances=30, tiny=TINY,
                   lora_set=("phases.0.epochs=3", "phases.1.epochs=8")),
}

# the two LoRA runs shown side by side: name and --set overrides of configs/demo_lora.yaml
VARIANTS = (("lora-r4", ("lora.r=4", "lora.alpha=16")), ("lora-r8", ("lora.r=8", "lora.alpha=32")))


@dataclass
class Paths:
    work: Path

    @property
    def corpus(self) -> Path:
        return self.work / "corpus"

    @property
    def manifest(self) -> Path:
        return self.work / "manifest.jsonl"

    @property
    def manifests(self) -> Path:
        return self.work / "manifests"

    @property
    def subset(self) -> Path:
        return self.work / "subset"

    @property
    def base(self) -> Path:
        return self.work / "base"

    @property
    def base_runs(self) -> Path:
        return self.work / "base-runs"

    @property
    def runs(self) -> Path:
        return self.work / "runs"


@dataclass
class Base:
    """The cached base model and its scores."""
    key: str
    model: str               # exports/merged of the base run
    run: str                 # the full fine-tuning run on the adults
    adult_per: float
    baseline: str | None = None      # the trainers.score run on the children's test split
    child_per: float | None = None


@dataclass
class Figures:
    adult_per: float
    child_per: float
    runs: dict[str, float | None] = field(default_factory=dict)   # run name -> child PER

    def ratio(self, name: str) -> float | None:
        per = self.runs.get(name)
        return None if per is None or not self.child_per else per / self.child_per

    @property
    def beaten(self) -> bool:
        """Every fine-tuned run beats the base model on the children."""
        return bool(self.runs) and all(p is not None and p < self.child_per for p in self.runs.values())

    @property
    def target_met(self) -> bool:
        ratios = [self.ratio(n) for n in self.runs]
        return self.beaten and all(r is not None and r <= TARGET_RATIO for r in ratios)


def _sha(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    return _sha(path.read_bytes())


# ---------------------------------------------------------------- data

def corpus_stamp(scale: Scale, seed: int) -> dict:
    """What the corpus depends on: sizes, seed, and the synthesiser's own code."""
    from kidconsole.corpus import synth

    return {"seed": seed, "adults": scale.adults, "children_per_age": scale.children_per_age,
            "utterances": scale.utterances, "synth": _file_sha(Path(synth.__file__))[:16]}


def ensure_corpus(paths: Paths, scale: Scale, seed: int, console) -> dict:
    """The synthetic corpus under WORK/corpus, reused when its stamp matches."""
    from kidconsole.corpus.synth import synthesize

    stamp = corpus_stamp(scale, seed)
    stamp_file = paths.corpus / STAMP
    try:
        if json.loads(stamp_file.read_text(encoding="utf-8")) == stamp:
            console.print(f"[{palette.OK}]corpus[/] reused: {paths.corpus}")
            return stamp
    except (OSError, ValueError):
        pass
    if paths.corpus.exists():
        shutil.rmtree(paths.corpus)
    with console.status(f"synthesising {scale.adults} adult and {scale.children_per_age * 8} child voices "
                        f"({scale.utterances} utterances each) into {paths.corpus}"):
        s = synthesize(paths.corpus, seed=seed, adults=scale.adults, children_per_age=scale.children_per_age,
                       utterances_per_speaker=scale.utterances)
    stamp_file.write_text(json.dumps(stamp), encoding="utf-8")
    console.print(f"[{palette.OK}]corpus[/] {s.utterances} utterances, {s.hours:.2f} h, in {s.seconds:.0f} s")
    return stamp


def prepare_manifests(paths: Paths, seed: int, console, progress: bool = True) -> dict[str, Path]:
    """Index the corpus; adult train/validation/test manifests by source split; the child subset."""
    from kidconsole.corpus.index import build_index
    from kidconsole.manifest import read_manifest, write_manifest
    from kidconsole.subset.build import build_subset

    summary = build_index(paths.corpus, paths.manifest, progress=progress and console.is_terminal)
    console.print(f"[{palette.OK}]index[/] {summary.kept} utterances, {summary.speakers} speakers, "
                  f"{summary.hours:.2f} h -> {paths.manifest}")
    rows = list(read_manifest(paths.manifest))
    paths.manifests.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for split in ("train", "validation", "test"):
        out[f"adult_{split}"] = paths.manifests / f"adult_{split}.jsonl"
        write_manifest(out[f"adult_{split}"], [r for r in rows if _adult(r) and r.split == split])
    out["child"] = paths.manifests / "child.jsonl"
    write_manifest(out["child"], [r for r in rows if _adult(r) is False])
    # speakers pooled and two age strata (3-6, 7-10): with two children per age, the source splits or
    # the finer default strata cannot give every split every stratum
    res = build_subset(out["child"], paths.subset, split_shares=(0.7, 0.15, 0.15), fractions=(0.5, 1.0),
                       max_val_samples=200, seed=seed, use_source_splits=False, age_edges=(7.0,),
                       duration_edges=(4.0,), progress=False)
    for name, f in res.files.items():
        out[name] = Path(f)
    tr, te = res.outputs["train"], res.outputs["test"]
    console.print(f"[{palette.OK}]subset[/] children: train {tr.utterances} utterances ({tr.hours:.2f} h, "
                  f"{tr.speakers} speakers), test {te.utterances} ({te.speakers} speakers), phases 50% / 100%")
    return out


def _adult(row) -> bool | None:
    age = row.age_years
    return None if age is None else age >= ADULT_AGE


# ---------------------------------------------------------------- runs

def _launch(config: Path, overrides: Sequence[str], root: Path, name: str, trainer: str = rundir.TRAINER) -> Path:
    from kidconsole.runs.launch import launch_run

    stem, n = name, 1
    while (root / name).exists():  # a leftover of an interrupted attempt keeps its history
        n += 1
        name = f"{stem}-{n}"
    return launch_run(config, overrides=list(overrides), runs_root=root, name=name, trainer_module=trainer)


def _threads(n: int) -> None:
    """Threads per run: the launched runs inherit this process's environment."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(max(1, n))


def _test_per(run: Path) -> float | None:
    """PER of the run's final test evaluation (its last ``test`` event)."""
    from kidconsole.runs.reader import RunReader

    reader = RunReader(run)
    reader.load_all()
    return reader.summary["test"].get("per")


def wait_for_runs(runs: Sequence[Path], console, title: str, poll: float = 1.0,
                  progress: bool = True) -> dict[Path, str]:
    """Rich progress bars (unless not ``progress``) fed by each run's events until every run has ended;
    returns final states."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from kidconsole.runs.reader import RunReader

    readers = {r: RunReader(r) for r in runs}
    states: dict[Path, str] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                  TimeElapsedColumn(), console=console, transient=False, disable=not progress) as bar:
        tasks = {r: bar.add_task(f"{title} {r.name}", total=None, info="starting") for r in runs}
        while len(states) < len(runs):
            for r, reader in readers.items():
                if r in states:
                    continue
                reader.poll()
                s = reader.summary
                state = reader.state()
                per = (s.get("eval/per") or {}).get("last")
                info = f"{state}"
                if s.get("phase"):
                    info += f", phase {s['phase']}"
                if per is not None:
                    info += f", valid PER {100 * per:.1f}%"
                bar.update(tasks[r], completed=s.get("step") or 0, total=s.get("total_steps") or None, info=info)
                if state in rundir.FINAL_STATES or state == rundir.INTERRUPTED:
                    states[r] = state
                    if s.get("total_steps"):
                        bar.update(tasks[r], completed=s["total_steps"])
            time.sleep(poll)
    return states


def _check_finished(states: dict[Path, str]) -> None:
    bad = {r: s for r, s in states.items() if s != rundir.FINISHED}
    if bad:
        detail = "; ".join(f"{r} {s}: {rundir.read_status(r).get('error') or 'see stdout.log'}" for r, s in bad.items())
        raise KidconsoleError(f"demo run did not finish: {detail}")


def base_key(scale: Scale, stamp: dict) -> str:
    return _sha(BASE_CONFIG.read_text(encoding="utf-8"), json.dumps(stamp, sort_keys=True),
                json.dumps(scale.tiny), json.dumps(scale.base_set))[:12]


def ensure_base(paths: Paths, scale: Scale, stamp: dict, m: dict[str, Path], console, launched: list[Path],
                progress: bool = True) -> Base:
    """The tiny base model trained on the adults, cached under WORK/base/<key>; its child baseline."""
    key = base_key(scale, stamp)
    home = paths.base / key
    record = home / "base.json"
    base = None
    try:
        base = Base(**json.loads(record.read_text(encoding="utf-8")))
        if not Path(base.model).is_dir():
            base = None
    except (OSError, ValueError, TypeError):
        pass
    if base is None:
        init = home / "init"
        if not init.is_dir():
            kw = dict(scale.tiny)
            cmd = [sys.executable, "-m", "trainers.tiny", str(init), "--seed", "0"]
            cmd += [a for k, v in kw.items() for a in (f"--{k}", str(v))]
            with console.status("building a random-weight tiny Wav2Vec2ForCTC (the base's starting point)"):
                done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
            if done.returncode:
                raise KidconsoleError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        console.print(f"[{palette.INFO}]base model[/] training on the adult voices "
                      f"(first time only; cached as {home})")
        _threads(os.cpu_count() or 1)
        run = _launch(BASE_CONFIG, [f"model.base={init}", f"data.train_manifest={m['adult_train']}",
                                    f"data.valid_manifest={m['adult_validation']}",
                                    f"data.test_manifest={m['adult_test']}", *scale.base_set],
                      paths.base_runs, f"base-{key}")
        launched.append(run)
        _check_finished(wait_for_runs([run], console, "base", progress=progress))
        adult = _test_per(run)
        if adult is None:
            raise KidconsoleError(f"{run}: no test event: the base run wrote no adult test PER")
        base = Base(key=key, model=str(run / rundir.EXPORTS / "merged"), run=str(run), adult_per=adult)
        home.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(asdict(base), indent=1), encoding="utf-8")
    else:
        console.print(f"[{palette.OK}]base model[/] reused: {base.model} (adult test PER {100 * base.adult_per:.1f}%)")

    test_sha = _file_sha(m["test"])[:12]
    if base.baseline and Path(base.baseline).name.endswith(test_sha) and base.child_per is not None \
            and (Path(base.baseline) / rundir.PREDICTIONS).exists():
        return base
    _threads(os.cpu_count() or 1)
    run = _launch(BASE_CONFIG, [f"model.base={base.model}", f"data.train_manifest={m['train']}",
                                f"data.valid_manifest={m['validation_sample']}", f"data.test_manifest={m['test']}",
                                *scale.base_set],
                  paths.base_runs, f"baseline-{key}-{test_sha}", trainer=rundir.SCORER)
    launched.append(run)
    _check_finished(wait_for_runs([run], console, "baseline", progress=progress))
    base.baseline, base.child_per = str(run), _test_per(run)
    if base.child_per is None:
        raise KidconsoleError(f"{run}: no test event: the baseline wrote no children's test PER")
    record.write_text(json.dumps(asdict(base), indent=1), encoding="utf-8")
    return base


def launch_lora(paths: Paths, scale: Scale, base: Base, m: dict[str, Path], launched: list[Path]) -> Path:
    """The two LoRA runs, side by side in WORK/runs/<timestamp>/; returns that folder."""
    folder = paths.runs / time.strftime("%Y%m%d-%H%M%S")
    _threads((os.cpu_count() or 2) // len(VARIANTS))  # share the cores without oversubscription
    phases = sorted(k for k in m if k.startswith("train_phase"))
    common = [f"model.base={base.model}", f"data.train_manifest={m['train']}",
              f"data.valid_manifest={m['validation_sample']}", f"data.test_manifest={m['test']}"]
    common += [f"phases.{i}.manifest={m[p]}" for i, p in enumerate(phases)]
    for name, sets in VARIANTS:
        launched.append(_launch(LORA_CONFIG, [*common, *sets, *scale.lora_set], folder, name))
    return folder


def stop_launched(launched: Sequence[Path], console) -> None:
    """Stop every run this demo started that is still going (Ctrl-C, or the console closed early)."""
    from kidconsole.runs.life import read_state, stop

    for run in launched:
        try:
            if read_state(run) in rundir.STOPPABLE_STATES:
                console.print(f"stopping {run.name} ...")
                stop(run, timeout=30)
        except (KidconsoleError, OSError) as e:
            console.print(f"[{palette.ERROR}]{run}: {e}[/]")


# ---------------------------------------------------------------- figures and reports

def collect_figures(base: Base, runs: Sequence[Path]) -> Figures:
    return Figures(adult_per=base.adult_per, child_per=base.child_per or float("nan"),
                   runs={r.name: _test_per(r) for r in runs})


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def print_figures(fig: Figures, console) -> None:
    from rich.table import Table

    t = Table(title="Demo figures (phone error rate, test splits)", title_justify="left")
    for col in ("model", "adults", "children", "vs base on children", "target"):
        t.add_column(col, justify="left" if col in ("model", "target") else "right")
    t.add_row("base (trained on adults)", _pct(fig.adult_per), _pct(fig.child_per), "1.00x",
              f"adults <= {_pct(ADULT_PER_TARGET)}: {'met' if fig.adult_per <= ADULT_PER_TARGET else 'NOT met'}")
    for name, per in fig.runs.items():
        ratio = fig.ratio(name)
        ok = ratio is not None and ratio <= TARGET_RATIO
        t.add_row(f"{name} (LoRA on children)", "", _pct(per), "-" if ratio is None else f"{ratio:.2f}x",
                  f"<= {TARGET_RATIO:.2f}x: {'met' if ok else 'NOT met'}")
    console.print(t)
    harder = fig.child_per / fig.adult_per if fig.adult_per else float("inf")
    console.print(f"children vs adults for the base model: {harder:.2f}x the PER")


def print_reports(base: Base, runs: Sequence[Path], console) -> None:
    """Per age group and per SNR: the baseline and each run, with each run's delta (run minus baseline:
    negative is better) and CI against the baseline; then the two runs against each other."""
    from rich.table import Table

    from kidconsole.report.render import interval_text
    from kidconsole.report.summary import report_for

    if not base.baseline:
        return
    reps = [report_for(r, base.baseline, n_boot=500) for r in runs]
    for dim, title in (("age_group", "age group"), ("snr", "SNR")):
        t = Table(title=f"PER by {title}: each run vs the base model (delta = run - base, 95% CI over speakers; "
                  "* significant)", title_justify="left")
        t.add_column(title)
        t.add_column("utts", justify="right")
        t.add_column("base", justify="right")
        for r in runs:
            t.add_column(r.name, justify="right")
            t.add_column("delta", justify="right")
        for b in reps[0].reference.dimensions[dim]:
            if not b.n:
                continue
            row = [b.label, str(b.n), _pct(b.rate("per"))]
            for rep in reps:
                d = next((d for d in rep.comparison.deltas
                          if d.dimension == dim and d.label == b.label and d.metric == "per"), None)
                if d is None or not d.n:
                    row += ["-", "-"]
                else:
                    mark = "*" if d.significant else ""
                    row += [_pct(d.rate), f"{100 * d.delta:+.1f} [{interval_text(d, 1)}]{mark}"]
            t.add_row(*row)
        console.print(t)
    if len(runs) == 2:
        c = report_for(runs[1], runs[0], n_boot=500).comparison
        d = next(d for d in c.deltas if d.dimension == "all" and d.metric == "per")
        console.print(f"{c.name} vs {c.reference}: PER {_pct(d.rate)} vs {_pct(d.reference)}, delta "
                      f"{100 * d.delta:+.2f} points [{interval_text(d)}]"
                      + (" (significant)" if d.significant else " (within noise)"))
    console.print(f"full reports: kidconsole report {runs[0]} --vs {base.baseline}")


# ---------------------------------------------------------------- the export

INT8_PER_TARGET = 0.005  # INT8's PER within half a point (absolute) of the PyTorch fp32 model's


def export_best(fig: Figures, runs: Sequence[Path], console) -> bool:
    """The better LoRA run exported to ONNX fp32 and INT8, each scored on the children's test split
    (``kidconsole export RUN --onnx --int8``, its output in RUN/exports/export.log); prints the table."""
    from kidconsole.report.exports import exports_table, read_exports
    from kidconsole.runs.exports import start_export
    from kidconsole.runs.life import follow_job

    scored = [r for r in runs if fig.runs.get(r.name) is not None]
    if not scored:
        return False
    best = min(scored, key=lambda r: fig.runs[r.name])
    log = best / rundir.EXPORTS / rundir.EXPORT_LOG
    _threads(os.cpu_count() or 1)
    t0 = time.time()
    with console.status(f"exporting {best.name} (the better run) to ONNX fp32 and INT8, scoring each on the "
                        f"children's test split"):
        start_export(best)  # a job as the console starts it: its output in the log
        state = follow_job(best / rundir.EXPORTS, log=rundir.EXPORT_LOG, write=lambda text: None)
    if state != rundir.FINISHED:
        console.print(f"[{palette.ERROR}]the export of {best} failed[/]: see {log}")
        return False
    records = read_exports(best)
    console.print(exports_table(records, f"{best.name} ({time.time() - t0:.0f} s)"))
    int8 = next((r for r in records if r["kind"] == "onnx-int8"), None)
    exports = best / rundir.EXPORTS
    if int8 is not None:
        ok = abs(int8["delta_per"]) <= INT8_PER_TARGET
        console.print(f"INT8 vs PyTorch fp32: PER {100 * int8['delta_per']:+.2f} points (target within "
                      f"{100 * INT8_PER_TARGET:.1f}: {'met' if ok else 'NOT met'}), {100 * int8['size_vs_fp32']:.0f}% "
                      f"of the size, {int8['speedup_batch1']:.2f}x the speed at batch 1; the exports are runs: "
                      f"kidconsole report {exports / 'onnx-int8'} --vs {exports / 'torch-fp32'}")
    return True


# ---------------------------------------------------------------- the demo

def run_demo(work: str | Path = "work/demo", *, headless: bool = False, quick: bool = False, fresh: bool = False,
             seed: int = 0, export: bool = True, console=None, progress: bool = True) -> int:
    """The whole demo; returns the exit code (1 when a fine-tuned run does not beat the base model).
    ``progress``: live bars while indexing and training (headless); ``export``: end with the ONNX export."""
    from rich.console import Console

    console = console or Console()
    scale = SCALES["quick" if quick else "full"]
    paths = Paths(Path(work).resolve())
    if fresh and paths.work.exists():
        shutil.rmtree(paths.work)
    paths.work.mkdir(parents=True, exist_ok=True)
    launched: list[Path] = []
    t0 = time.time()
    try:
        stamp = ensure_corpus(paths, scale, seed, console)
        m = prepare_manifests(paths, seed, console, progress)
        base = ensure_base(paths, scale, stamp, m, console, launched, progress)
        console.print(f"[{palette.OK}]baseline[/] base model on the children's test split: PER {_pct(base.child_per)} "
                      f"(adults {_pct(base.adult_per)})")
        folder = launch_lora(paths, scale, base, m, launched)
        runs = [folder / name for name, _ in VARIANTS]
        console.print(f"[{palette.INFO}]LoRA runs[/] {', '.join(r.name for r in runs)} started in {folder} "
                      f"({time.time() - t0:.0f} s since the start)")
        if headless:
            _check_finished(wait_for_runs(runs, console, "LoRA", progress=progress))
        else:
            from kidconsole.tui.app import run_console

            run_console([str(folder), str(paths.base_runs)], baseline=base.baseline)
            if any(rundir.read_status(r).get("state") != rundir.FINISHED for r in runs):
                stop_launched(launched, console)
                console.print(f"the console closed before the runs finished: stopped; resume with "
                              f"`kidconsole run resume {runs[0]}` ...")
                return 0
    except KeyboardInterrupt:
        stop_launched(launched, console)
        return 130
    fig = collect_figures(base, runs)
    print_reports(base, runs, console)
    print_figures(fig, console)
    console.print(f"demo took {time.time() - t0:.0f} s; work folder {paths.work}")
    if not fig.beaten:
        console.print(f"[{palette.ERROR}]a fine-tuned run did not beat the base model on the children[/]")
        return 1
    console.print(f"every fine-tuned run beats the base model; the {TARGET_RATIO:.2f}x target is "
                  + (f"[{palette.OK}]met[/]" if fig.target_met else f"[{palette.WARNING}]not met[/]"))
    if export and not export_best(fig, runs, console):
        return 1
    return 0
