"""Curriculum behaviour: where each phase starts, how much of it is augmented, which checkpoints exist,
and which utterances a phase's fraction takes."""

from collections import defaultdict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kidconsole.config import load_config
from kidconsole.manifest import Utterance
from trainers import checkpoint as ckpt
from trainers.data import subset
from trainers.train import main as train_main


def _trainer(cfg, run_dir, cls):
    from accelerate import Accelerator

    from trainers.model import configure, load_base
    from trainers.report import Reporter
    from trainers.signals import StopRequest

    base = load_base(cfg.model)
    model = configure(base.model, cfg.model, cfg.lora, base.head)
    return cls(cfg, run_dir, Accelerator(cpu=True), model, base.processor, False, Reporter(run_dir, True),
               StopRequest(60))


def test_each_phase_starts_from_the_previous_phases_best_weights(make_config, tmp_path, rd):
    from trainers.loop import Trainer
    from trainers.model import trainable_state

    at_start: dict[int, dict] = {}

    class Watched(Trainer):
        def _train_epoch(self, pi, rows, durations):
            if pi not in at_start:
                at_start[pi] = {k: v.clone() for k, v in trainable_state(self.acc.unwrap_model(self.model)).items()}
            return super()._train_epoch(pi, rows, durations)

    # min_delta so large that only a phase's first evaluation is its best: the best is not the last weights
    phase = {"epochs": 2, "lr": 1e-2, "warmup": 2, "min_delta": 1e9}
    cfg = load_config(make_config(train__eval_every=2, train__keep_last=100, data__test_manifest=None,
                                  phases=[{**phase, "name": "one"}, {**phase, "name": "two"}]))
    run = tmp_path / "run"
    tr = _trainer(cfg, run, Watched)
    assert tr.run(None) == "finished"
    best = tr.state.phase_bests["0"]
    assert best == "step-00000002"
    phase_one = [e for e in rd.events(run, "checkpoint") if e["phase"] == 1]
    last = phase_one[-1]["name"]
    assert last != best

    def saved(name):
        return {k.removeprefix("module."): v for k, v in load_file(run / "checkpoints" / name / ckpt.WEIGHTS).items()}

    # each phase warms up again to its own peak and decays to its last step (train events at every step)
    from trainers.optim import lr_at

    for pi, total in enumerate(tr.phase_totals):
        lrs = [e["lr"] for e in rd.events(run, "train") if e["phase"] == pi + 1]
        assert lrs == pytest.approx([lr_at(cfg.phases[pi], s, total, "linear") for s in range(total)])

    start, best_t, last_t = at_start[1], saved(best), saved(last)
    assert start.keys() == best_t.keys() and any("lora_" in k for k in start)
    assert all(torch.equal(start[k], best_t[k]) for k in start)
    assert not all(torch.equal(start[k], last_t[k]) for k in start)  # not where phase one ended


@pytest.mark.slow
def test_masking_and_speed_perturbation_run_at_each_phases_rate(make_config, tmp_path, rd):
    # the reference's phases: weak masks 50% and keeps the speed, strong masks all and perturbs the speed
    # of half (0.9 / 1.0 / 1.1: a third of those keep 1.0), medium masks 75%
    phases = [{"name": n, "epochs": 5, "lr": 1e-3, "augment": n} for n in ("weak", "strong", "medium")]
    config = make_config(data__test_manifest=None, train__eval_every=10 ** 6, train__log_every=10 ** 6,
                         phases=phases)
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    last = {e["phase"]: e for e in rd.events(run, "train")}  # cumulative counts at each phase's end
    counts = {}
    keys = ("samples", "masked_utterances", "speed_perturbed")
    before = dict.fromkeys(keys, 0)
    for p in (1, 2, 3):
        counts[p] = {k: last[p][k] - before[k] for k in keys}
        before = last[p]
    n = {p: counts[p]["samples"] for p in counts}
    assert all(v >= 150 for v in n.values())

    def near(got, share, total):  # within 4 standard deviations of the binomial
        return abs(got - share * total) <= 4 * np.sqrt(share * (1 - share) * total) + 1

    assert near(counts[1]["masked_utterances"], 0.5, n[1]) and counts[1]["speed_perturbed"] == 0
    assert counts[2]["masked_utterances"] == n[2] and near(counts[2]["speed_perturbed"], 1 / 3, n[2])
    assert near(counts[3]["masked_utterances"], 0.75, n[3]) and near(counts[3]["speed_perturbed"], 1 / 3, n[3])
    assert 0 < counts[1]["masked_utterances"] < n[1] and 0 < counts[3]["masked_utterances"] < n[3]


@pytest.mark.slow
def test_checkpoints_follow_save_every_and_keep_the_newest_two_and_the_best(make_config, tmp_path, rd):
    config = make_config(train__eval_every=3, train__save_every=2, train__keep_last=2, data__test_manifest=None,
                         phases=[{"epochs": 3, "lr": 1e-3, "min_delta": 1e9}])
    run = tmp_path / "run"
    assert train_main(["--config", str(config), "--run-dir", str(run)]) == 0
    end = rd.status(run)["step"]
    saved = [(e["step"], e["best"]) for e in rd.events(run, "checkpoint")]
    evals = [e["step"] for e in rd.events(run, "eval")]
    assert evals[:2] == [3, 6]
    # every second step, the best evaluation's step (3), and the phase's end
    expected = sorted({*range(2, end + 1, 2), 3, end})
    assert [s for s, _ in saved] == expected
    assert [s for s, best in saved if best] == [3]
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == sorted({ckpt.checkpoint_name(s) for s in (3, *expected[-2:])})


def test_prune_keeps_the_newest_and_every_protected_checkpoint(tmp_path):
    for step in range(1, 8):
        (tmp_path / ckpt.checkpoint_name(step)).mkdir()
        (tmp_path / ckpt.checkpoint_name(step) / "COMPLETE").write_text("")
    (tmp_path / ".tmp-step-00000009").mkdir()  # an unfinished one is not the pruner's
    gone = ckpt.prune(tmp_path, 2, {ckpt.checkpoint_name(2)})
    assert sorted(gone) == [ckpt.checkpoint_name(s) for s in (1, 3, 4, 5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-step-00000009", *(ckpt.checkpoint_name(s)
                                                                                   for s in (2, 6, 7))]


def _rows(n: int, seed: int = 0) -> list[Utterance]:
    rng = np.random.default_rng(seed)
    return [Utterance(id=f"u{i:04d}", audio=f"/x/{i}.wav", duration=float(rng.choice([1.5, 3.0, 6.0, 9.0])),
                      sample_rate=16000, speaker=f"s{i % 17}", split="train", text="", phones="A",
                      age=float(rng.choice([4, 6, 8, 10, 30])), snr=float(rng.choice([5, 15, 25, 35])))
            for i in range(n)]


def _hours_by(rows, key) -> dict:
    out = defaultdict(float)
    for r in rows:
        out[key(r)] += r.duration
    return out


def test_a_phase_fraction_is_stratified_and_nested_as_the_subset_builder_draws_it():
    from kidconsole.subset.strata import Strata

    rows = _rows(3000)
    strata = Strata()

    def cell(r):
        return int(strata.cells(np.array([r.age]), np.array([r.snr]), np.array([r.duration]))[0])

    whole = _hours_by(rows, cell)
    small, large = subset(rows, 0.2, 5), subset(rows, 0.6, 5)
    assert {r.id for r in small} < {r.id for r in large}  # nested
    for part, share in ((small, 0.2), (large, 0.6)):
        got = _hours_by(part, cell)
        assert abs(sum(got.values()) / sum(whole.values()) - share) < 0.01
        # every cell keeps its share of the hours, within one utterance
        assert all(abs(got.get(c, 0.0) - share * h) <= 9.0 for c, h in whole.items())
    # the draw depends on the ids and the seed, not on the manifest's order
    assert {r.id for r in subset(rows[::-1], 0.2, 5)} == {r.id for r in small}
    assert {r.id for r in subset(rows, 0.2, 6)} != {r.id for r in small}
    assert subset(rows, 1.0, 5) == rows


def test_a_tiny_fraction_still_takes_an_utterance():
    assert len(subset(_rows(3), 0.01, 0)) == 1
