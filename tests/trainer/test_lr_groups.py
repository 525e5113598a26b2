"""Discriminative learning rates: train.lr_groups validated, built into AdamW groups, frozen at LR 0, logged."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from kidconsole.config import load_config
from kidconsole.errors import KidconsoleError


def _model(cfg):
    from trainers.model import configure, load_base

    base = load_base(cfg.model, cfg.data.sample_rate)
    return configure(base.model, cfg.model, cfg.lora, base.head)


def test_an_unknown_pattern_term_is_named_with_its_key(make_config):
    with pytest.raises(KidconsoleError, match=r"train\.lr_groups\.1\.params: unknown pattern term 'layer'"):
        load_config(make_config(train__lr_groups=[{"params": "head", "lr": 1e-3},
                                                  {"params": "layer 0", "lr": 1e-3}]))


def test_two_groups_claiming_the_same_parameters_are_refused(make_config):
    with pytest.raises(KidconsoleError, match=r"train\.lr_groups: groups 0 \('layers 0-1'\) and 1 \('lora layers 1'\)"):
        load_config(make_config(train__lr_groups=[{"params": "layers 0-1", "lr": 1e-3},
                                                  {"params": "lora layers 1", "lr": 1e-4}]))
    with pytest.raises(KidconsoleError, match="lr .absolute. or scale"):
        load_config(make_config(train__lr_groups=[{"params": "head", "lr": 1e-3, "scale": 2.0}]))


def test_lora_groups_hold_their_layers_adapters_and_a_zero_lr_freezes(make_config):
    from trainers.optim import build_param_groups

    cfg = load_config(make_config(model__start="encoder", train__lr_groups=[
        {"params": "lora layers 0", "lr": 1e-5, "name": "low"},
        {"params": "lora layers 1", "scale": 2.0, "name": "high"},
        {"params": "head", "lr": 0.0}]))
    model = _model(cfg)
    head = [n for n, p in model.named_parameters() if "lm_head" in n and p.requires_grad]
    assert head  # a new head is trained unless a group freezes it
    groups, specs = build_param_groups(model, cfg.train.lr_groups)
    names = {id(p): n for n, p in model.named_parameters()}
    by = {g["name"]: sorted(names[id(p)] for p in g["params"]) for g in groups}
    assert set(by) == {"low", "high"}  # the head (LR 0) is in no group; nothing is left for the default group
    assert by["low"] and all(".layers.0." in n and "lora_" in n for n in by["low"])
    assert by["high"] and all(".layers.1." in n and "lora_" in n for n in by["high"])
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lm_head" in n)
    assert [s.label for s in specs] == ["low", "high"]


def test_full_fine_tuning_groups_and_the_default_group(make_config):
    from trainers.optim import build_param_groups, group_lr

    cfg = load_config(make_config(lora__enabled=False, train__lr_groups=[
        {"params": "layers 0", "lr": 0.0}, {"params": "layers 1", "scale": 0.5}]))
    model = _model(cfg)
    groups, specs = build_param_groups(model, cfg.train.lr_groups)
    assert [g["name"] for g in groups] == ["default", "layers 1"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert any("feature_extractor" in names[id(p)] for p in groups[0]["params"])  # what no group claims
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".layers.0." in n)
    phase = cfg.phases[0]
    assert group_lr(specs[1], phase, 5, 10, "constant") == pytest.approx(0.5 * phase.lr)
    assert group_lr(None, phase, 5, 10, "constant") == pytest.approx(phase.lr)


def test_a_parameter_matched_by_two_globs_and_a_group_matching_nothing_are_refused_at_build(make_config):
    from trainers.optim import build_param_groups

    cfg = load_config(make_config(train__lr_groups=[{"params": "names *q_proj*", "lr": 1e-3},
                                                    {"params": "lora", "lr": 1e-4}]))
    with pytest.raises(KidconsoleError, match=r"claimed by groups 0 \('names \*q_proj\*'\) and 1 \('lora'\)"):
        build_param_groups(_model(cfg), cfg.train.lr_groups)
    cfg = load_config(make_config(train__lr_groups=[{"params": "feature_encoder", "lr": 1e-3}]))
    with pytest.raises(KidconsoleError, match=r"lr_groups\.0\.params: 'feature_encoder' matches no trainable"):
        build_param_groups(_model(cfg), cfg.train.lr_groups)  # LoRA: the CNN trains only under full fine-tuning


def test_a_run_with_groups_logs_each_groups_lr_and_leaves_a_frozen_group_untouched(make_config, tmp_path, tiny_model):
    from safetensors.torch import load_file

    from kidconsole.runs.reader import RunReader

    config = make_config(lora__enabled=False, train__log_every=2, train__lr_groups=[
        {"params": "layers 0", "lr": 0.0, "name": "frozen"}, {"params": "head", "scale": 0.5, "name": "head"}])
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "trainers.train", "--config", str(config), "--run-dir", str(run)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    trains = [e for e in map(json.loads, (run / "events.jsonl").read_text().splitlines()) if e["kind"] == "train"]
    assert trains and all(e["lr_groups"] == ["head"] for e in trains)  # a frozen group has no LR to log
    assert all(e["group_lrs"][0] == pytest.approx(0.5 * e["lr"]) for e in trains)
    base = load_file(str(tiny_model / "model.safetensors"))
    merged = load_file(str(run / "exports" / "merged" / "model.safetensors"))
    layer0 = [k for k in base if ".layers.0." in k]
    assert layer0 and all(torch.equal(base[k], merged[k]) for k in layer0)
    assert not all(torch.equal(base[k], merged[k]) for k in base if ".layers.1." in k)
    reader = RunReader(run)
    reader.poll()
    assert "train/lr:head" in reader.series and len(reader.series["train/lr:head"]) == len(trains)
