"""Mirroring a run to TensorBoard and MLflow: what the real libraries read back equals events.jsonl, live from
the trainer or afterwards with `run mirror`; a mirror that fails warns and counts, never stops the run."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kidconsole import rundir
from kidconsole.cli import main
from kidconsole.errors import KidconsoleError
from kidconsole.mirror import Mirror, metrics, mirror_run, mirror_key

TESTS = Path(__file__).resolve().parents[1]
RECORDING = TESTS / "console" / "recordings" / "r16-lr3e-4"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_trainer = _load("trainer_fixtures", TESTS / "trainer" / "conftest.py")  # the tiny model and the tone corpus
tiny_model, tones = _trainer.tiny_model, _trainer.tones


def finished_run(root: Path) -> Path:
    """A recorded run, ended: its events plus a test evaluation and the end, and an export to carry."""
    run = root / "r16"
    run.mkdir(parents=True)
    for name in (rundir.CONFIG, rundir.EVENTS, rundir.STATUS):
        shutil.copy(RECORDING / name, run / name)
    w = rundir.EventWriter(run / rundir.EVENTS)
    w.emit(rundir.EV_TEST, t=1760009999.0, step=6000, per=0.21, cer=0.3, wer=0.5, n=110, split="test",
           per_age={"<5": 0.4, "5-6": 0.25}, per_snr={"<10 dB": 0.3})
    w.emit(rundir.EV_END, t=1760010000.0, step=6000, state=rundir.FINISHED, exit_code=0, reason="all phases done")
    w.close()
    rundir.update_status(run, state=rundir.FINISHED)
    (run / rundir.EXPORTS / "adapter").mkdir(parents=True)
    (run / rundir.EXPORTS / "adapter" / "adapter_config.json").write_text("{}")
    return run


def expected(run: Path) -> dict[str, list[tuple[int, float]]]:
    """What events.jsonl says, read here without the mirror's code: (step, value) per series."""
    out: dict[str, list[tuple[int, float]]] = {}
    for line in (run / rundir.EVENTS).read_text().splitlines():
        ev = json.loads(line)
        prefix = {"train": "train", "eval": "eval", "test": "test"}.get(ev["kind"])
        if prefix is None:
            continue
        for k, v in ev.items():
            if k in ("t", "kind", "step", "phase", "epoch", "samples", "n", "audio_seconds", "padding", "best",
                     "eval_seconds", "total_steps", "masked_utterances", "speed_perturbed", "split"):
                continue
            if isinstance(v, dict):
                for b, x in v.items():
                    out.setdefault(f"{prefix}/{k}/{b}", []).append((ev["step"], x))
            elif isinstance(v, (int, float)):
                out.setdefault(f"{prefix}/{k}", []).append((ev["step"], v))
    return out


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def mlflow_run(root: Path, run: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / rundir.MLFLOW_DB}")
    (found,) = client.search_runs([client.get_experiment_by_name("kidconsole").experiment_id],
                                  f"tags.`kidconsole.run_dir` = '{run.resolve()}'")
    return client, found


def same(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> bool:
    return [s for s, _ in a] == [s for s, _ in b] and np.allclose([v for _, v in a], [v for _, v in b], rtol=1e-6)


def test_an_events_chart_values_are_named_as_the_consoles_series():
    ev = {"step": 10, "loss": 1.5, "lr": 1e-4, "grad_norm": None, "samples_per_s": 9.0, "lr_groups": ["top"],
          "group_lrs": [2e-4]}
    assert metrics("train", ev) == [("train/loss", 1.5), ("train/lr", 1e-4), ("train/samples_per_s", 9.0),
                                    ("train/lr:top", 2e-4)]
    ev = {"step": 20, "per": 0.3, "eval_share": 0.2, "per_age": {"5-6": 0.4}, "best": True}
    assert metrics("eval", ev) == [("eval/per", 0.3), ("eval/eval_share", 0.2), ("eval/per_age/5-6", 0.4)]
    assert metrics("test", {"per": 0.2, "per_snr": {"<10 dB": 0.5}}) == [("test/per", 0.2),
                                                                          ("test/per_snr/<10 dB", 0.5)]
    assert metrics("heartbeat", {"step": 3}) == [] and mirror_key("eval/per_snr/<10 dB") == "eval/per_snr/_10_dB"


def test_run_mirror_to_tensorboard_equals_the_events_and_refuses_to_mirror_twice(tmp_path, capsys):
    run = finished_run(tmp_path / "runs")
    assert main(["run", "mirror", str(run), "--to", "tensorboard"]) == 0
    assert "events mirrored to tensorboard" in capsys.readouterr().out
    got, want = tensorboard_scalars(run / rundir.TENSORBOARD), expected(run)
    want = {mirror_key(k): v for k, v in want.items()}
    assert set(got) == set(want)
    for key in want:
        assert same(got[key], want[key]), key
    with pytest.raises(KidconsoleError, match="already mirrored to tensorboard"):
        mirror_run(run, ["tensorboard"])
    mirror_run(run, ["tensorboard"], replace=True)
    assert same(tensorboard_scalars(run / rundir.TENSORBOARD)["train/loss"], want["train/loss"])  # not twice


@pytest.mark.slow  # MLflow makes its SQLite store's tables first: about 7 s
def test_run_mirror_to_mlflow_equals_the_events_with_the_config_and_the_exports(tmp_path):
    root = tmp_path / "runs"
    run = finished_run(root)
    report = mirror_run(run, ["mlflow"])
    assert not report.failures and report.events > 300
    client, found = mlflow_run(root, run)
    assert found.info.status == "FINISHED" and found.info.run_name == "r16-lr3e-4"
    assert found.data.params["lora.r"] == "16" and found.data.params["phases.0.name"] == "clean"
    want = expected(run)
    assert set(found.data.metrics) == {mirror_key(k) for k in want}
    for key in ("train/loss", "train/lr", "eval/per", "eval/eval_share", "eval/per_age/<5", "test/per_age/5-6"):
        history = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, mirror_key(key)))
        assert same(history, want[key]), key
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"config.yaml", "exports"} <= artifacts
    assert (root / rundir.MLFLOW_ARTIFACTS).is_dir()  # beside the store, never in the working folder
    with pytest.raises(KidconsoleError, match="already mirrored to mlflow"):
        mirror_run(run, ["mlflow"])


class Broken:
    name = "broken"

    def begin(self, name, params):
        raise ConnectionError("tracking server gone")

    log = end = begin


def test_a_failing_mirror_warns_counts_and_never_raises(tmp_path):
    warned = []
    m = Mirror.open(tmp_path / "run", ["tensorboard"], None, warn=warned.append)
    m.targets.append(Broken())
    m.event("start", 1.0, {"step": 0})
    for step in range(1, 250):
        m.event("train", 1.0 + step, {"step": step, "loss": 1.0})
    m.event("end", 300.0, {"step": 249, "state": "finished"})
    assert m.failures == {"broken": 251}
    assert len(warned) == 3 and "mirror to broken failed (1 time so far; the run goes on)" in warned[0]
    assert tensorboard_scalars(tmp_path / "run" / rundir.TENSORBOARD)["train/loss"][-1] == (249, 1.0)


def test_a_mirror_that_cannot_open_is_counted_and_the_others_still_work(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "a-file").write_text("")
    cfg = SimpleNamespace(mlflow=SimpleNamespace(tracking_uri=f"sqlite:///{tmp_path}/a-file/x.db",
                                                 experiment=None), model_dump=lambda: {"lora": {"r": 4}})
    warned = []
    m = Mirror.open(tmp_path / "run", ["mlflow", "tensorboard"], cfg, warn=warned.append)
    assert m.failures == {"mlflow": 1} and [t.name for t in m.targets] == ["tensorboard"]
    assert "mirror to mlflow failed" in warned[0]


@pytest.mark.slow
def test_the_trainer_mirrors_its_events_live_to_tensorboard_and_mlflow(tmp_path, tiny_model, tones,
                                                                       tiny_run_config, train_to_end):
    root = tmp_path / "runs"
    cfg = tiny_run_config(tiny_model, tones, report_to=["tensorboard", "mlflow"],
                          train__eval_every=5)
    run = train_to_end(cfg, tmp_path / "run.yaml", root / "live")
    want = expected(run)
    assert {"train/loss", "eval/per", "eval/eval_share", "test/per"} <= set(want)
    assert any(k.startswith("eval/per_age/") for k in want) and any(k.startswith("test/per_age/") for k in want)
    got = tensorboard_scalars(run / rundir.TENSORBOARD)
    assert set(got) == {mirror_key(k) for k in want}
    for key in want:
        assert same(got[mirror_key(key)], want[key]), key
    client, found = mlflow_run(root, run)
    assert found.info.status == "FINISHED" and found.data.params["lora.r"] == "4"
    for key in want:
        history = sorted((m.step, m.value) for m in client.get_metric_history(found.info.run_id, mirror_key(key)))
        assert same(history, want[key]), key
