"""What the alignment, audit and decoding benchmarks share: the demo's synthetic corpus (here with label errors
planted in 5% of its training split and the phone times written), manifests by source split, the demo's
base model (configs/demo_base.yaml on the adults) and its LoRA adaptation (configs/demo_lora.yaml) on the
children. Runs are kept under the benchmark's folder and used again when their config is unchanged
(bench.tone_runs.train), so a benchmark killed half way, or run again, trains only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from bench.tone_runs import run_python, train
from kidconsole.demo import CONFIGS, SCALES

PLANTED_SHARE = 0.05
ADULT_AGE = 18


def corpus(root: Path, seed: int = 0, planted: float = PLANTED_SHARE, mispronounce: float = 0.0) -> dict[str, Path]:
    """The demo's full-scale corpus with ``planted`` of its training split mislabelled, indexed, and split into
    ``adult_train/validation/test`` and ``child_train/validation/test`` manifests (source splits: the planted
    errors are all in the train manifests); ``planted``, ``phone_times`` and ``mispronounced`` name the
    generator's lists (``mispronounce``: the share of children's utterances said with a substitution)."""
    from kidconsole.corpus.index import build_index
    from kidconsole.corpus.synth import MISPRONOUNCED_FILE, PHONE_TIMES_FILE, PLANTED_FILE, synthesize
    from kidconsole.manifest import read_manifest, write_manifest

    scale = SCALES["full"]
    tag = f"{seed}-{planted:g}" + (f"-mis{mispronounce:g}" if mispronounce else "")
    folder = root / f"corpus-{tag}"
    manifest = root / f"corpus-{tag}.jsonl"
    if not (folder / PHONE_TIMES_FILE).exists():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        synthesize(folder, seed=seed, adults=scale.adults, children_per_age=scale.children_per_age,
                   utterances_per_speaker=scale.utterances, label_errors=planted, phone_times=True,
                   mispronounce=mispronounce)
        manifest.unlink(missing_ok=True)
    if not manifest.exists():
        build_index(folder, manifest, progress=False)
    out = {"manifest": manifest, "planted": folder / PLANTED_FILE, "phone_times": folder / PHONE_TIMES_FILE,
           "mispronounced": folder / MISPRONOUNCED_FILE}
    rows = list(read_manifest(manifest))
    for who in ("adult", "child"):
        for split in ("train", "validation", "test"):
            path = root / "manifests" / f"{who}_{split}-{tag}.jsonl"
            if not path.exists():
                write_manifest(path, [r for r in rows if r.split == split and r.age_years is not None
                                      and (r.age_years >= ADULT_AGE) == (who == "adult")])
            out[f"{who}_{split}"] = path
    return out


def planted_ids(m: dict[str, Path]) -> dict[str, str]:
    """id -> the kind of label error planted in it."""
    if not m["planted"].exists():
        return {}
    return {d["id"]: d["kind"] for d in map(json.loads, m["planted"].read_text(encoding="utf-8").splitlines())}


def _config(name: str, overrides: dict) -> dict:
    cfg = yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))
    for key, value in overrides.items():
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return cfg


def base_model(root: Path, m: dict[str, Path], seed: int = 0) -> Path:
    """The demo's base: a random tiny Wav2Vec2ForCTC fully fine-tuned on the adults (configs/demo_base.yaml);
    its merged export."""
    from trainers.tiny import build_tiny

    geometry = dict(SCALES["full"].tiny)
    init = root / "init"
    if not (init / "config.json").exists():
        build_tiny(init, hidden=geometry["hidden"], layers=geometry["layers"], heads=geometry["heads"],
                   conv=geometry["conv"], seed=0)
    cfg = _config("demo_base.yaml", {"model.base": str(init), "data.train_manifest": str(m["adult_train"]),
                                     "data.valid_manifest": str(m["adult_validation"]),
                                     "data.test_manifest": str(m["adult_test"]), "name": f"base-{seed}"})
    return train(root, f"base-{seed}", cfg) / "exports" / "merged"


def subset(root: Path, name: str, train_manifest: Path, exclude: Path | None = None) -> dict[str, Path]:
    """``kidconsole subset build`` of the children's train manifest, all of it train (the source validation
    and test splits stay as they are), curriculum 50% / 100% as the demo's, ``--exclude`` a suspects file."""
    out = root / "subsets" / name
    if not (out / "train_phase2.jsonl").exists():
        cmd = ["-m", "kidconsole", "subset", "build", train_manifest, "-o", out, "--split", "1/0/0",
               "--fractions", "0.5/1", "--age-edges", "7", "--duration-edges", "4", "--no-progress"]
        run_python(*cmd, *(["--exclude", exclude] if exclude else []))
    return {k: out / f"{k}.jsonl" for k in ("train", "train_phase1", "train_phase2")}


def lora(root: Path, name: str, base: Path, parts: dict[str, Path], m: dict[str, Path], **overrides) -> Path:
    """The demo's LoRA run (configs/demo_lora.yaml, r=8) on the children from ``base``, at the length of
    `kidconsole demo --quick` (3 + 8 epochs: the 2 shared cores take about as long as the demo's full run
    on its smaller training split)."""
    quick = dict(s.split("=") for s in SCALES["quick"].lora_set)
    cfg = _config("demo_lora.yaml", {**{k: int(v) for k, v in quick.items()},
        "name": name, "model.base": str(base), "data.train_manifest": str(parts["train"]),
        "data.valid_manifest": str(m["child_validation"]), "data.test_manifest": str(m["child_test"]),
        "phases.0.manifest": str(parts["train_phase1"]), "phases.1.manifest": str(parts["train_phase2"]),
        **overrides})
    return train(root, name, cfg)


def demo_models(root: Path) -> tuple[Path, Path]:
    """The demo's base (its merged export) and LoRA run on the demo's clean corpus (seed 0)."""
    demo = corpus(root, seed=0, planted=0.0)
    base = base_model(root, demo)
    return base, lora(root, "lora-demo", base, subset(root, "demo", demo["child_train"]), demo)

