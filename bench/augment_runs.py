"""Waveform augmentation against the reference recipe in the demo's setting (``bench techniques``, section 6).

For each seed: the demo's synthetic corpus drawn with that seed (8 adults, 3 children of each age 3-10,
30 utterances each; its own speakers), its child subset, and the demo's base model trained on its adults
(configs/demo_base.yaml), all as ``kidconsole demo`` makes them. Every arm is a LoRA run from that base
(configs/demo_lora.yaml: r 8, alpha 32) of the same steps on the children's training split, one phase,
evaluated on the validation sample, its best checkpoint tested on the children's test split; it differs
from the reference arm (the reference recipe's SpecAugment and speed perturbation, preset ``medium``) by
one thing: an augmentation added to it, the chain of those that helped, or adult voices in its data.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.tone_runs import LORA, REPO, finished, train

STEPS = 150
PROB = 0.5  # each augmentation's probability in its own arm (and in the chain)
REFERENCE = "medium"  # the reference's last phase: SpecAugment on 75% of utterances, speed perturbation on 50%
SINGLE = ("pitch", "vtlp", "reverb", "noise", "babble", "colored_noise", "gain", "concat")
LABELS = {"pitch": "pitch shift, -3..+3 semitones", "vtlp": "VTLP, formants x0.9..1.1",
          "reverb": "reverberation, simulated rooms RT60 0.2-0.8 s",
          "noise": "noise recordings, SNR 0-15 dB", "babble": "babble of 3-7 talkers, SNR 13-20 dB",
          "colored_noise": "coloured noise, SNR 10-30 dB", "gain": "gain -6..+6 dB",
          "concat": "concatenation of 2-3 utterances"}


def demo_data(root: Path, seed: int, console) -> dict[str, Path]:
    """The demo's corpus and manifests for ``seed`` under ``root`` (reused when there)."""
    from kidconsole.demo import SCALES, Paths, ensure_corpus, prepare_manifests

    paths = Paths(root)
    root.mkdir(parents=True, exist_ok=True)
    ensure_corpus(paths, SCALES["full"], seed, console)
    return prepare_manifests(paths, seed, console, progress=False)


def demo_base(root: Path, seed: int, m: dict[str, Path]) -> Path:
    """The demo's base model for ``seed``: the tiny model trained on its adults (its merged export)."""
    from kidconsole.demo import TINY
    from trainers.tiny import build_tiny

    geometry = dict(TINY)
    init = root / "init"
    if not (init / "config.json").exists():
        build_tiny(init, hidden=geometry["hidden"], layers=geometry["layers"], heads=geometry["heads"],
                   conv=geometry["conv"], seed=seed)
    cfg = yaml.safe_load((REPO / "configs" / "demo_base.yaml").read_text(encoding="utf-8"))
    cfg.update(name="base", seed=seed)
    cfg["model"]["base"] = str(init)
    cfg["data"].update(train_manifest=str(m["adult_train"]), valid_manifest=str(m["adult_validation"]),
                       test_manifest=str(m["adult_test"]), num_workers=0)
    return train(root, "base", cfg) / "exports" / "merged"


def noise_folder(root: Path) -> Path:
    """Noise "recordings" for the noise arm (MUSAN is not shipped): bench_augment's synthetic ones."""
    from bench.bench_augment import noise_folder as make

    folder = root / "noise"
    return folder if folder.exists() else make(root)


def augment(waveform: dict | None = None) -> dict:
    """The reference recipe's augmentation with ``waveform`` added."""
    from kidconsole.config import PRESETS

    return {**PRESETS[REFERENCE], "waveform": waveform or {}}


def arm_waveform(name: str, noise: Path) -> dict:
    spec: dict = {"prob": PROB}
    if name == "noise":
        spec["folder"] = str(noise)
    return {name: spec}


def lora(root: Path, name: str, seed: int, m: dict, base: Path, steps: int, phase: dict) -> Path:
    """A LoRA run of the demo's config from ``base`` on the children's train split (or the phase's
    manifests): ``steps`` steps, one phase."""
    cfg = yaml.safe_load((REPO / "configs" / "demo_lora.yaml").read_text(encoding="utf-8"))
    cfg.update(name=name, seed=seed)
    cfg["model"]["base"] = str(base)
    cfg["lora"] = {**LORA, "r": 8, "alpha": 32}
    cfg["data"].update(train_manifest=str(m["train"]), valid_manifest=str(m["validation_sample"]),
                       test_manifest=str(m["test"]), num_workers=0)
    cfg["train"].update(eval_every=max(1, steps // 5), log_every=10)
    cfg["phases"] = [{"name": "children", "epochs": 1000, "max_steps": steps, "lr": 1.0e-2, "warmup": 10, **phase}]
    return train(root, name, cfg)


def best_valid_per(run: Path) -> float:
    """The run's best validation PER (what the chain is chosen on: the test split is only reported)."""
    pers = [e["per"] for e in map(json.loads, (run / "events.jsonl").read_text(encoding="utf-8").splitlines())
            if e.get("kind") == "eval" and e.get("per") is not None]
    return min(pers)


def adult_phase(m: dict, child_like: bool) -> dict:
    """A phase on the children's train split and the adults' (transformed toward children or as they are)."""
    adults = {"path": str(m["adult_train"])}
    if child_like:
        adults["augment"] = "child_like"
    return {"manifests": [{"path": str(m["train"])}, adults], "augment": augment()}


def is_done(root: Path, name: str) -> bool:
    return finished(root / "runs" / name)


def arm_phases(m: dict, noise: Path) -> dict[str, tuple[str, dict]]:
    """Every arm but the chain: name -> (label, phase settings)."""
    arms = {"reference": ("reference: SpecAugment 75% + speed 50% (preset medium)", {"augment": augment()})}
    for name in SINGLE:
        arms[name] = (f"+ {LABELS[name]} ({PROB:.0%})", {"augment": augment(arm_waveform(name, noise))})
    arms["adults"] = ("+ the adults' voices as they are (phases[].manifests)", adult_phase(m, child_like=False))
    arms["adults-child-like"] = ("+ the adults' voices made child-like (preset child_like)", adult_phase(m, True))
    return arms


def chain_of(names: list[str], noise: Path) -> dict:
    waveform: dict = {}
    for name in names:
        waveform.update(arm_waveform(name, noise))
    return {"augment": augment(waveform)}


def arm_names() -> list[str]:
    """The arms ``run_section`` can run (``--augment-arms``), the chain aside."""
    return ["reference", *SINGLE, "adults", "adults-child-like"]


def run_section(root: Path, seeds: list[int], steps: int, jobs: int, console,
                arms: list[str] | None = None) -> dict:
    """Every arm of every seed (``jobs`` runs at a time), then the chain of the augmentations whose arms had
    a lower best validation PER than the reference's, averaged over the seeds. Returns, by arm name:
    its label, its runs by seed (with the reference's), and the chain's members. ``arms``: only these
    (the reference always); the chain needs every single augmentation's arm, so it runs only with all.
    A run of other than the default steps is named for them, so both lengths keep their runs."""
    from concurrent.futures import ThreadPoolExecutor

    chosen = set(arms or arm_names()) | {"reference"}
    run_name = (lambda name: name) if steps == STEPS else (lambda name: f"{name}-{steps}steps")
    data = {s: demo_data(root / f"seed-{s}", s, console) for s in seeds}  # one at a time: one G2P cache
    noise = {s: noise_folder(root / f"seed-{s}") for s in seeds}
    work = [(s, name, label, phase) for s in seeds for name, (label, phase) in arm_phases(data[s], noise[s]).items()
            if name in chosen]
    with ThreadPoolExecutor(jobs) as pool:
        # the bases first: an arm's task waits for its seed's base, which is already running or done
        bases = {s: pool.submit(demo_base, root / f"seed-{s}", s, data[s]) for s in seeds}
        runs = [pool.submit(lambda w: lora(root / f"seed-{w[0]}", run_name(w[1]), w[0], data[w[0]],
                                           bases[w[0]].result(), steps, w[3]), w) for w in work]
        runs = [f.result() for f in runs]
    settings = {s: (data[s], bases[s].result()) for s in seeds}
    out: dict = {}
    for (s, name, label, _), run in zip(work, runs):
        out.setdefault(name, {"label": label, "runs": {}})["runs"][s] = run
    if not set(SINGLE) <= chosen:
        return out
    gain = {name: sum(best_valid_per(out[name]["runs"][s]) - best_valid_per(out["reference"]["runs"][s])
                      for s in seeds) / len(seeds) for name in SINGLE}
    members = sorted((n for n in SINGLE if gain[n] < 0), key=gain.get) or [min(SINGLE, key=gain.get)]
    if len(members) == 1:  # a chain of one is that arm: its runs are the chain's
        chain_runs = [out[members[0]]["runs"][s] for s in seeds]
    else:
        with ThreadPoolExecutor(jobs) as pool:
            chain_runs = list(pool.map(lambda s: lora(root / f"seed-{s}", run_name("chain"), s, *settings[s], steps,
                                                      chain_of(members, noise[s])), seeds))
    helped = [n for n in members if gain[n] < 0]
    label = (f"+ the chain of {', '.join(members)} ({PROB:.0%} each)" if len(members) > 1 else
             f"+ the chain: {members[0]} alone" + ("" if helped else " (no arm lowered the validation PER: the "
                                                    "least harmful)"))
    out["chain"] = {"label": label,
                    "runs": dict(zip(seeds, chain_runs)), "members": members}
    out["_valid_gain"] = gain
    out["_settings"] = settings
    return out
