"""ONNX exports of a finished run, each scored on the test manifest like a run and measured.

``python -m trainers.export_job RUN [--int8] [--manifest M] [--threads N]``
(``kidconsole export RUN --onnx [--int8]`` calls it; the console can start it
as a subprocess: kidconsole/runs/exports.py).

Each kind is a run directory of its own under ``RUN/exports/<kind>/`` (status,
events with a ``test`` event, ``predictions.jsonl``, the run's config), so
``kidconsole report`` and the console read it like any run:
- ``torch-fp32``: the PyTorch model (``exports/merged``, or the adapter merged
  into its base), in fp32 on the CPU: the reference;
- ``onnx-fp32``: ``model.onnx`` from it, checked against PyTorch on real test
  utterances (largest logit difference below 1e-3, or the export fails);
- ``onnx-int8``: ONNX Runtime's dynamic INT8 of it (trainers/onnx.py says what
  is quantised and what stays fp32); per-channel weights when per-tensor loses
  more than 0.5 PER points.
Then every kind's real-time factor on this machine's CPU (batch 1 and batched,
the kinds timed in turn, median of rounds) and its comparison with the
reference (ΔPER = kind - torch-fp32 with a speaker-bootstrap interval; the 5
phones whose error rate grew most) go into ``exports/<kind>/export.json``, and
the table of all kinds into ``exports/exports.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from kidconsole import rundir

TORCH_FP32, ONNX_FP32, ONNX_INT8 = "torch-fp32", "onnx-fp32", "onnx-int8"
FP32_TOLERANCE = 1e-3        # largest logit difference ONNX fp32 may have from PyTorch
INT8_PER_BUDGET = 0.005      # PER (absolute) dynamic per-tensor INT8 may lose before per-channel is tried
CHECK_UTTERANCES = 8         # test utterances the fp32 check runs on
SPEED_UTTERANCES = 16        # test utterances timed for the real-time factor


def parser() -> argparse.ArgumentParser:
    from kidconsole.job_arguments import add_export_arguments

    ap = argparse.ArgumentParser(prog="python -m trainers.export_job", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(ap)
    ap.add_argument("--speed-utterances", type=int, default=SPEED_UTTERANCES, metavar="N",
                    help=f"test utterances timed for the real-time factor (default {SPEED_UTTERANCES})")
    ap.add_argument("--speed-rounds", type=int, default=3, metavar="N", help="timing rounds (default 3)")
    return ap


@dataclass
class Kind:
    name: str
    folder: Path
    forward: object = None
    model_path: Path | None = None
    per: float | None = None
    cer: float | None = None
    wer: float | None = None
    n: int = 0
    seconds: float = 0.0                       # time to make it (export, quantisation)
    difference: object = None                  # trainers.onnx.Difference vs the reference
    extra: dict = field(default_factory=dict)  # quantisation settings and attempts


class Job:
    def __init__(self, args):
        import torch

        from kidconsole.config import dump_config, load_config
        from kidconsole.errors import KidconsoleError
        from trainers.data import load_rows
        from trainers.evaluate import EvalSettings
        from trainers.recogniser import load_recogniser

        self.run = Path(args.run).resolve()
        if not (self.run / rundir.CONFIG).is_file():
            raise KidconsoleError(f"{self.run}: not a run directory (no {rundir.CONFIG})")
        cfg = load_config(self.run / rundir.CONFIG)
        self.config_text = dump_config(cfg)
        self.manifest = args.manifest or cfg.data.test_manifest
        if not self.manifest:
            raise KidconsoleError(f"{self.run / rundir.CONFIG}: data.test_manifest: none to score the exports on; "
                                  f"give --manifest")
        self.settings = replace(EvalSettings.from_config(cfg), num_workers=0)
        self.stop_timeout = cfg.train.stop_timeout
        self.rows = load_rows(self.manifest)
        self.threads = args.threads or os.cpu_count() or 1
        torch.set_num_threads(self.threads)
        self.args = args
        self.reference = load_recogniser(self.run, "cpu", self.threads)
        self.source = self.reference.path
        self.exports = self.run / rundir.EXPORTS
        self.kinds: dict[str, Kind] = {}
        self._check_batches = None

    # ---------- one kind: a run directory ----------
    def scored(self, name: str, build) -> Kind | None:
        """Makes kind ``name`` with ``build(kind)`` (which sets its forward) and scores it, in a session
        of its own; None when it failed or was stopped (its status says why)."""
        from kidconsole.errors import KidconsoleError
        from trainers.evaluate import score_manifest
        from trainers.session import Session

        kind = Kind(name, self.exports / name)
        shutil.rmtree(kind.folder, ignore_errors=True)
        kind.folder.mkdir(parents=True)
        session = Session(f"trainers.export_job {name}", kind.folder).open(True, self.stop_timeout)

        def body() -> tuple[str, str]:
            session.begin(self.config_text, f"{self.run.name}/{name}", rundir.STARTING, kind=rundir.JOB)
            t0 = time.perf_counter()
            build(kind)
            kind.seconds = time.perf_counter() - t0
            if name != TORCH_FP32:
                from trainers.onnx import logit_difference

                kind.difference = logit_difference(kind.forward, self.reference.forward, self.check_batches())
                print(f"{name}: largest logit difference from PyTorch {kind.difference.max_abs:.2e} "
                      f"({100 * kind.difference.argmax_agree:.2f}% of frames decode alike)")
                if name == ONNX_FP32 and not kind.difference.max_abs < FP32_TOLERANCE:
                    raise KidconsoleError(f"{name}: logits differ from PyTorch by {kind.difference.max_abs:.2e}, "
                                          f"more than {FP32_TOLERANCE:g}: the export is wrong")
            session.rep.status(state=rundir.EVALUATING)
            session.rep.emit(rundir.EV_START, step=0, resumed_from=None, world_size=1, trainable_params=0,
                             total_params=sum(p.numel() for p in self.reference.forward.base.parameters()),
                             total_steps=0)
            res = score_manifest(kind.forward, self.manifest, self.settings, session.rep,
                                 self.reference.inverse_vocab, should_stop=lambda: session.stopped,
                                 log=lambda line: print(f"{name} {line}"))
            if res.aborted:
                return rundir.STOPPED, session.stop_reason()
            kind.per, kind.cer, kind.wer, kind.n = res.per, res.cer, res.wer, res.n
            return rundir.FINISHED, "exported and scored"

        code = session.run(body)
        if code or session.stopped:
            return None
        self.kinds[name] = kind
        return kind

    def check_batches(self) -> list:
        """The first test utterances in a few padded batches (loaded once)."""
        if self._check_batches is None:
            from trainers.data import fixed_sample
            from trainers.evaluate import eval_loader

            rows = fixed_sample(self.rows, CHECK_UTTERANCES, 0)
            self._check_batches = list(eval_loader(rows, self.settings, self.reference.forward))
        return self._check_batches

    # ---------- the kinds ----------
    def build_torch(self, kind: Kind) -> None:
        kind.forward, kind.model_path = self.reference.forward, self.source

    def _processor_files(self, folder: Path) -> None:
        """The model's config and processor beside the ONNX file: what loading and decoding it needs."""
        self.reference.config.save_pretrained(str(folder))
        for f in self.source.iterdir():
            if f.suffix == ".json" and f.name not in ("config.json", "adapter_config.json") and f.is_file():
                shutil.copy2(f, folder / f.name)

    def build_onnx_fp32(self, kind: Kind) -> None:
        from trainers.onnx import OnnxForward, export_onnx

        self._processor_files(kind.folder)
        fe = self.reference.forward.feature_extractor
        kind.model_path = export_onnx(self.reference.forward.base, kind.folder / rundir.ONNX_MODEL,
                                      self.reference.sample_rate, masked=bool(fe.return_attention_mask))
        kind.forward = OnnxForward(kind.model_path, self.reference.config, self.reference.forward.feature_extractor,
                                   threads=self.threads)

    def build_onnx_int8(self, kind: Kind, per_channel: bool) -> None:
        from trainers.onnx import QUANTISED_OPS, OnnxForward, quantize_int8

        self._processor_files(kind.folder)
        kind.model_path = quantize_int8(self.kinds[ONNX_FP32].model_path, kind.folder / rundir.ONNX_MODEL,
                                        per_channel=per_channel)
        kind.forward = OnnxForward(kind.model_path, self.reference.config, self.reference.forward.feature_extractor,
                                   threads=self.threads)
        kind.extra["quantisation"] = {"method": "dynamic", "weights": "int8", "activations": "uint8, per batch",
                                      "per_channel": per_channel, "quantised_ops": list(QUANTISED_OPS),
                                      "kept_fp32": "Conv (feature encoder, positional convolution), "
                                                   "attention score and value MatMuls, LayerNorm, softmax"}

    def int8(self) -> Kind | None:
        """Per-tensor weights first (the smaller, faster model); per-channel when per-tensor loses more than
        INT8_PER_BUDGET; the better of the two is kept."""
        ref = self.kinds[TORCH_FP32]
        attempts: list[dict] = []
        kind = None
        for per_channel in ([True] if self.args.per_channel else [False, True]):
            kind = self.scored(ONNX_INT8, lambda k, pc=per_channel: self.build_onnx_int8(k, pc))
            if kind is None:
                return None
            attempts.append({"per_channel": per_channel, "per": kind.per, "delta_per": kind.per - ref.per})
            if attempts[-1]["delta_per"] <= INT8_PER_BUDGET:
                break
            print(f"{ONNX_INT8}: {'per-channel' if per_channel else 'per-tensor'} INT8 loses "
                  f"{100 * attempts[-1]['delta_per']:.2f} PER points (budget {100 * INT8_PER_BUDGET:.1f})")
        if len(attempts) == 2 and attempts[0]["delta_per"] < attempts[1]["delta_per"]:
            kind = self.scored(ONNX_INT8, lambda k: self.build_onnx_int8(k, False))
        if kind is not None:
            kind.extra["attempts"] = attempts
        return kind

    # ---------- measurements ----------
    def speed(self) -> dict[str, dict[str, float]]:
        """Real-time factors (compute seconds over audio seconds) at batch 1 and batched: every kind timed
        in turn on the same batches, each round in a rotated order; the median round."""
        from trainers.data import fixed_sample
        from trainers.evaluate import eval_loader

        import torch

        rows = fixed_sample(self.rows, self.args.speed_utterances, 1)
        audio = sum(r.duration for r in rows)
        fwd = self.reference.forward
        one = list(eval_loader(rows, replace(self.settings, max_utterances=1), fwd))
        many = list(eval_loader(rows, self.settings, fwd))
        names = list(self.kinds)
        times = {n: {"batch1": [], "batched": []} for n in names}

        def timed(forward, batches) -> float:
            t0 = time.perf_counter()
            with torch.no_grad():
                for b in batches:
                    forward(b)
            return time.perf_counter() - t0

        for n in names:  # warm-up: first runs allocate
            timed(self.kinds[n].forward, one[:2] + many[:1])
        for r in range(self.args.speed_rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                times[n]["batch1"].append(timed(self.kinds[n].forward, one))
                times[n]["batched"].append(timed(self.kinds[n].forward, many))
        return {n: {k: statistics.median(v) / audio for k, v in t.items()} | {"audio_seconds": audio,
                                                                              "batches": len(many)}
                for n, t in times.items()}

    def records(self, speed: dict) -> dict[str, dict]:
        from kidconsole.report.summary import report_for
        from trainers.onnx import model_bytes

        ref = self.kinds[TORCH_FP32]
        ref_size = model_bytes(self.source)
        ref_phones = {s.phone: s for s in report_for(ref.folder).phones}
        out = {}
        for name, kind in self.kinds.items():
            size = model_bytes(kind.model_path)
            sp = speed[name]
            rec = {"kind": name, "run": str(self.run), "source": str(self.source), "model": str(kind.model_path),
                   "manifest": str(self.manifest), "created_at": round(time.time(), 3),
                   "make_seconds": round(kind.seconds, 2), "size_bytes": size, "size_vs_fp32": size / ref_size,
                   "cpu": _cpu_name(), "threads": self.threads, "speed_audio_seconds": round(sp["audio_seconds"], 2),
                   "rtf_batch1": sp["batch1"], "rtf_batched": sp["batched"],
                   "speedup_batch1": speed[TORCH_FP32]["batch1"] / sp["batch1"],
                   "speedup_batched": speed[TORCH_FP32]["batched"] / sp["batched"],
                   "per": kind.per, "cer": kind.cer, "wer": kind.wer, "n": kind.n,
                   "delta_per": kind.per - ref.per, "delta_per_ci": None, "significant": False,
                   "max_logit_diff": kind.difference.max_abs if kind.difference else 0.0,
                   "argmax_agree": kind.difference.argmax_agree if kind.difference else 1.0,
                   "worst_phones": [], **kind.extra}
            if name != TORCH_FP32:
                rep = report_for(kind.folder, ref.folder, n_boot=1000)  # Δ = export − PyTorch fp32
                d = next(d for d in rep.comparison.deltas if d.dimension == "all" and d.metric == "per")
                rec.update(delta_per=d.delta, delta_per_ci=[d.lo, d.hi], significant=d.significant)
                rec["worst_phones"] = worst_phones(ref_phones, {s.phone: s for s in report_for(kind.folder).phones})
            out[name] = rec
        return out


def worst_phones(ref: dict, kind: dict, k: int = 5) -> list[dict]:
    """The ``k`` reference phones whose error rate grew most from ``ref`` to ``kind`` (Δ = kind − ref)."""
    rows = []
    for phone, r in ref.items():
        if not r.count:
            continue
        mine = kind.get(phone)
        rate = mine.error_rate if mine is not None and mine.count else 0.0
        rows.append({"phone": phone, "count": r.count, "per_ref": r.error_rate, "per": rate,
                     "delta": rate - r.error_rate})
    return sorted(rows, key=lambda x: (-x["delta"], -x["count"], x["phone"]))[:k]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from rich.console import Console

    from kidconsole.errors import KidconsoleError
    from kidconsole.report.exports import exports_markdown, exports_table, write_record
    from trainers.quiet import quiet_libraries

    quiet_libraries()
    try:
        job = Job(args)
    except KidconsoleError as e:
        print(f"trainers.export_job: error: {e}", file=sys.stderr)
        exports = Path(args.run).resolve() / rundir.EXPORTS
        job = rundir.read_status_record(exports)
        if job.kind == rundir.JOB and job.state not in rundir.FINAL_STATES:  # this job's: its end says why, whole
            rundir.write_end(exports, rundir.FAILED, str(e), exit_code=1, error=str(e))
        return 1
    ok = job.scored(TORCH_FP32, job.build_torch) and job.scored(ONNX_FP32, job.build_onnx_fp32)
    if ok and args.int8:
        ok = job.int8()
    if not job.kinds.get(ONNX_FP32):
        return 1
    records = job.records(job.speed())
    for name, rec in records.items():
        write_record(job.exports / name, rec)
    table = exports_markdown(list(records.values()), job.run.name)
    rundir.atomic_write_text(job.exports / rundir.EXPORTS_TABLE, table)
    wide = Console(width=max(Console().width, 180))  # the table's width, also when piped to export.log
    wide.print(exports_table(list(records.values()), job.run.name))
    print(f"exports in {job.exports} (table: {job.exports / rundir.EXPORTS_TABLE})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
