"""Write the recorded run directories the console tests replay.

Two LoRA runs on the same curriculum, differing in LoRA rank and learning
rate, recorded mid-training: train steps, evaluations with PER/CER, decodes,
phase changes, checkpoints, warnings, heartbeats, a config.yaml and a
stdout.log, all with fixed times (deterministic: rerunning gives the same files);
and a Hugging Face Trainer's output folder mid-training (``HF_RUN``: its
TensorBoard events and its checkpoints' trainer_state.json).

    .venv/bin/python tests/console/make_recordings.py   # rewrites tests/console/recordings/
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import yaml

from kidconsole.rundir import (CHECKPOINTS, COMPLETE, CONFIG, DECODES, EVENTS, STATUS, STDOUT, DecodeRow, EventWriter,
                              JsonlWriter)

HERE = Path(__file__).parent
T0 = 1_760_000_000.0  # fixed start time of the recordings
SENTENCES = [  # references (phones), as the decodes hold them
    "H A N G U G EO | M A L | J A L | H A p N I D A",
    "S O N EU L | J A p GG O | G A T I | G A iO",
    "U R I | iEO N M A L | M O G EU L | G A L | G EO iE iO",
    "G U NG M I N | H A k GG iO | E | G A N D A",
    "I | Ch E k | Ph iO J I | Ch EU NG M O L | J U S E iO",
    "D A L B I Ch I | B A L G A iO",
]
PHONES = "A E I O U EO EU G N D R M B S J H K k t L p NG".split()

RUNS = {
    "r16-lr3e-4": {"r": 16, "lr": 3e-4, "gpus": [0], "steps": 3000, "seed": 1, "sps": 61.0},
    "r32-lr1e-4": {"r": 32, "lr": 1e-4, "gpus": [1], "steps": 2400, "seed": 2, "sps": 54.0},
}
TOTAL_STEPS = 6000
PHASES = [("clean", 0, 2000, 1.0), ("all", 2000, 6000, 0.5)]  # name, first step, last, lr scale


def config(name: str, r: int, lr: float) -> dict:
    return {
        "name": name,
        "seed": 1234,
        "model": {"base": "/data/models/xlsr-300m-korean-phoneme", "start": "ctc",
                  "freeze_feature_encoder": True, "freeze_layers": None, "ctc_zero_infinity": True,
                  "layerdrop": 0.0},
        "lora": {"enabled": True, "r": r, "alpha": 2 * r, "dropout": 0.05,
                 "target_modules": ["q_proj", "k_proj", "v_proj"], "layers": None},
        "data": {"train_manifest": "/data/subsets/child-148h/train.tsv",
                 "valid_manifest": "/data/subsets/child-148h/valid.tsv",
                 "test_manifest": "/data/subsets/child-148h/test.tsv", "sample_rate": 16000,
                 "max_seconds": 20.0, "batch_seconds": 160.0, "num_workers": 4},
        "train": {"mixed_precision": "bf16", "grad_accum": 1, "max_grad_norm": 1.0, "schedule": "linear",
                  "log_every": 10, "eval_every": 500, "decodes_per_eval": 3},
        "phases": [{"name": p[0], "epochs": 1, "lr": lr * p[3], "warmup": 100 if i == 0 else 0,
                    "augment": "weak" if i == 0 else "medium", "monitor": "per"} for i, p in enumerate(PHASES)],
    }


def corrupt(ref: str, rate: float, rng: random.Random) -> str:
    out = []
    for tok in ref.split():
        if tok == "|" or rng.random() > rate:
            out.append(tok)
            continue
        op = rng.choice("sdi")
        if op == "s":
            out.append(rng.choice(PHONES))
        elif op == "i":
            out += [tok, rng.choice(PHONES)]
    return " ".join(out)


AGE_LAG = {"<5": 1.42, "5-6": 1.21, "7-8": 1.02, "9-10": 0.88, "11-17": 0.81}
SNR_LAG = {"<10 dB": 1.3, "10-20 dB": 1.08, "20-30 dB": 0.94, ">=30 dB": 0.87}


def record(out_root: Path, name: str, spec: dict) -> None:
    run = out_root / name
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    rng = random.Random(spec["seed"])
    (run / CONFIG).write_text(yaml.safe_dump(config(name, spec["r"], spec["lr"]), sort_keys=False), encoding="utf-8")
    events = EventWriter(run / EVENTS)
    decodes = JsonlWriter(run / DECODES, DecodeRow)
    log = [f"launching {name} on GPU {spec['gpus'][0]}", "accelerate launch --num_processes 1 -m trainers.train"]
    t = T0
    trainable = 786_432 * spec["r"] // 16
    events.emit("start", t=t, step=0, resumed_from=None, world_size=1,
                  trainable_params=trainable, total_params=315_438_000 + trainable, total_steps=TOTAL_STEPS)
    best_per = math.inf
    bad = nonfinite = 0
    sps = spec["sps"]
    samples = 0
    phase = 0
    for step in range(0, spec["steps"] + 1, 10):
        for i, (pname, first, _last, scale) in enumerate(PHASES):
            if step == first and i + 1 > phase:
                phase = i + 1
                events.emit("phase", t=round(t, 3), phase=phase, name=pname, step=step,
                              epochs=1, lr=spec["lr"] * scale, train_utterances=41_200 if i == 0 else 98_760,
                              train_hours=59.3 if i == 0 else 148.2, total_steps=TOTAL_STEPS)
                log.append(f"phase {phase} ({pname}) from step {step}")
        if step == 0:
            continue
        t += 10 * 16 / sps
        samples += 160
        progress = step / TOTAL_STEPS
        base = 0.45 + 1.9 * math.exp(-step / (700 if spec["lr"] > 2e-4 else 1100))
        loss = base * (1 + rng.gauss(0, 0.08))
        lr_now = spec["lr"] * PHASES[phase - 1][3] * min(1.0, step / 100) * (1 - 0.5 * progress)
        finite = not (name.startswith("r16") and step == 1730)
        if not finite:
            nonfinite += 1
            events.emit("warning", t=round(t, 3), step=step, what="nonfinite_loss",
                          message="loss is NaN; batch skipped", count=nonfinite, id=None)
            log.append(f"WARNING step {step}: loss is NaN; batch skipped")
        events.emit("train", t=round(t, 3), step=step, phase=phase, epoch=0,
                      loss=round(loss, 4) if finite else None, lr=lr_now,
                      grad_norm=round(abs(rng.gauss(2.0, 0.5)), 3), samples_per_s=round(sps * (1 + rng.gauss(0, 0.03)), 1),
                      samples=samples, audio_seconds=round(samples * 4.1, 1), padding=0.12,
                      total_steps=TOTAL_STEPS)
        if step % 370 == 0 and bad < 4:
            bad += 1
            uid = f"KC{spec['seed']}{step:05d}"
            events.emit("warning", t=round(t, 3), step=step, what="bad_sample",
                          message=f"{uid}.wav: cannot decode audio (truncated file)", count=bad, id=uid)
            log.append(f"WARNING skipped {uid}.wav: cannot decode audio (truncated file)")
        if step % 100 == 0:
            events.emit("heartbeat", t=round(t + 0.5, 3), step=step)
        if step % 500 == 0:
            eval_seconds = 42.0
            t += eval_seconds
            per = 0.3667 * math.exp(-step / (2600 if spec["lr"] > 2e-4 else 3600)) + 0.12 + rng.gauss(0, 0.004)
            cer = per * 1.35
            is_best = per < best_per
            best_per = min(best_per, per)
            events.emit("eval", t=round(t, 3), step=step, phase=phase,
                          loss=round(base * 1.1, 4), per=round(per, 4), cer=round(cer, 4),
                          wer=round(per * 2.1, 4), n=2000, eval_seconds=eval_seconds,
                          eval_share=round(eval_seconds / (eval_seconds + 500 * 16 / sps), 3), best=is_best,
                          # the youngest lag behind, the noisiest too (fixed ratios: the random stream is unchanged)
                          per_age={a: round(per * f, 4) for a, f in AGE_LAG.items()},
                          per_snr={b: round(per * f, 4) for b, f in SNR_LAG.items()})
            for k, ref in enumerate(rng.sample(SENTENCES, 3)):
                decodes.write({"t": round(t, 3), "step": step, "phase": phase, "id": f"KV{k:03d}{step:05d}",
                               "ref": ref, "hyp": corrupt(ref, per, rng)})
            ck = f"step-{step:06d}"  # recorded with six digits: any count of digits names a step
            (run / CHECKPOINTS / ck).mkdir(parents=True)
            (run / CHECKPOINTS / ck / COMPLETE).write_text("", encoding="utf-8")
            events.emit("checkpoint", t=round(t, 3), step=step, phase=phase, name=ck,
                          path=f"{CHECKPOINTS}/{ck}", best=is_best, metric=round(per, 4))
            log.append(f"step {step}: eval loss {base * 1.1:.4f} PER {per:.2%} CER {cer:.2%} ({eval_seconds:.0f}s)")
            log.append(f"saved {CHECKPOINTS}/{ck}")
    events.close()
    decodes.close()
    status = {"name": name, "state": "running", "pid": 0, "pgid": 0, "create_time": T0 - 5, "host": "gpu-server-1",
              "gpus": spec["gpus"], "command": ["accelerate", "launch", "-m", "trainers.train", str(run)],
              "started_at": T0 - 5, "updated_at": round(t, 3), "phase": phase, "step": spec["steps"],
              "total_steps": TOTAL_STEPS, "version": "0.1.0"}
    (run / STATUS).write_text(json.dumps(status, indent=1), encoding="utf-8")
    (run / STDOUT).write_text("\n".join(log) + "\n", encoding="utf-8")


# a Hugging Face Trainer's output folder, recorded mid-training as the reference's train_all_phases*.py leave
# one (full fine-tuning, r=32's settings): TensorBoard events under runs/<date>_<host>/ and the two newest
# checkpoints' trainer_state.json (the weights left out: the console reads only the state)
HF_RUN = "phase1_full_r32"
HF = {"steps": 2600, "max_steps": 6000, "logging_steps": 20, "eval_steps": 500, "save_steps": 1000, "keep": 2,
      "lr": 5e-5, "warmup": 200, "it_per_s": 5.5, "eval_seconds": 38.0, "epochs": 3, "batch": 8, "seed": 3}


def _tb_value(tag: str, value: float | None = None, text: str | None = None):
    from tensorboardX.proto import summary_pb2, tensor_pb2

    if text is None:
        return summary_pb2.Summary.Value(tag=tag, simple_value=value)
    return summary_pb2.Summary.Value(
        tag=f"{tag}/text_summary", tensor=tensor_pb2.TensorProto(dtype=7, string_val=[text.encode()]),
        metadata=summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="text")))


def record_hf(out_root: Path, name: str = HF_RUN, spec: dict = HF) -> None:
    """The Trainer's files with fixed times: each scalar its own event, as its TensorBoard callback writes."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.proto.summary_pb2 import Summary
    from tensorboardX.record_writer import RecordWriter

    run = out_root / name
    if run.exists():
        shutil.rmtree(run)
    logs = run / "runs" / "Dec10_09-33-20_gpu-server-2"
    logs.mkdir(parents=True)
    rng = random.Random(spec["seed"])
    writer = RecordWriter(str(logs / f"events.out.tfevents.{int(T0)}.gpu-server-2.4242.0"))

    def emit(t: float, step: int, *values) -> None:
        writer.write(Event(wall_time=t, step=step, summary=Summary(value=list(values))).SerializeToString())

    writer.write(Event(wall_time=T0, file_version="brain.Event:2").SerializeToString())
    args = {"output_dir": f"checkpoints_full_r32/{name}", "max_steps": spec["max_steps"],
            "num_train_epochs": spec["epochs"], "per_device_train_batch_size": spec["batch"],
            "gradient_accumulation_steps": 2, "learning_rate": spec["lr"], "warmup_steps": spec["warmup"],
            "logging_steps": spec["logging_steps"], "eval_steps": spec["eval_steps"],
            "save_steps": spec["save_steps"], "save_total_limit": spec["keep"], "metric_for_best_model": "per",
            "greater_is_better": False, "report_to": ["tensorboard"]}
    emit(T0, 0, _tb_value("args", text=json.dumps(args, indent=2)))
    history, t, best = [], T0, (math.inf, 0)
    steps_per_epoch = spec["max_steps"] / spec["epochs"]
    for step in range(spec["logging_steps"], spec["steps"] + 1, spec["logging_steps"]):
        t += spec["logging_steps"] / spec["it_per_s"]
        epoch = round(step / steps_per_epoch, 4)
        lr = spec["lr"] * min(1.0, step / spec["warmup"]) * (1 - step / spec["max_steps"])
        loss = round((0.5 + 1.7 * math.exp(-step / 900)) * (1 + rng.gauss(0, 0.07)), 4)
        grad_norm = round(abs(rng.gauss(0.8, 0.2)), 4)
        history.append({"epoch": epoch, "grad_norm": grad_norm, "learning_rate": lr, "loss": loss, "step": step})
        emit(t, step, _tb_value("train/loss", loss))
        emit(t, step, _tb_value("train/grad_norm", grad_norm))
        emit(t, step, _tb_value("train/learning_rate", lr))
        emit(t, step, _tb_value("train/epoch", epoch))
        if step % spec["eval_steps"] == 0:
            t += spec["eval_seconds"]
            per = round(0.3667 * math.exp(-step / 3000) + 0.105 + rng.gauss(0, 0.004), 4)
            metrics = {"eval_loss": round(0.62 * math.exp(-step / 2500) + 0.33, 4), "eval_per": per,
                       "eval_cer": round(per * 0.74, 4), "eval_runtime": spec["eval_seconds"],
                       "eval_samples_per_second": 526.3, "eval_steps_per_second": 16.4}
            history.append({"epoch": epoch, **metrics, "step": step})
            for key, v in metrics.items():
                emit(t, step, _tb_value("eval/" + key.removeprefix("eval_"), v))
            best = min(best, (per, step))
        if step % spec["save_steps"] == 0:
            ck = run / f"checkpoint-{step}"
            ck.mkdir()
            state = {"best_global_step": best[1], "best_metric": best[0],
                     "best_model_checkpoint": f"checkpoints_full_r32/{name}/checkpoint-{best[1]}", "epoch": epoch,
                     "eval_steps": spec["eval_steps"], "global_step": step, "is_hyper_param_search": False,
                     "is_local_process_zero": True, "is_world_process_zero": True, "log_history": list(history),
                     "logging_steps": spec["logging_steps"], "max_steps": spec["max_steps"],
                     "num_input_tokens_seen": 0, "num_train_epochs": spec["epochs"],
                     "save_steps": spec["save_steps"], "stateful_callbacks": {}, "total_flos": 0.0,
                     "train_batch_size": spec["batch"], "trial_name": None, "trial_params": None}
            (ck / "trainer_state.json").write_text(json.dumps(state, indent=2, sort_keys=True) + "\n",
                                                   encoding="utf-8")
            for old in sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))[:-spec["keep"]]:
                shutil.rmtree(old)  # save_total_limit
    writer.close()


def main() -> None:
    out = HERE / "recordings"
    for name, spec in RUNS.items():
        record(out, name, spec)
    record_hf(out)
    print(f"wrote {len(RUNS)} recorded runs and a Trainer's output folder under {out}")


if __name__ == "__main__":
    main()
