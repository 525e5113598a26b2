"""Export benchmark: ONNX fp32 and INT8 of XLS-R 300M's geometry and of the demo-size model, on the CPU.

XLS-R 300M (24 layers, hidden 1024, random weights) with our 47-output CTC head
and a LoRA adapter (r=16 on q/k/v) merged, as a trained run's exports/merged
would be; then the demo-size model (trainers.tiny: 3 x 96, the 320x encoder).
For each: export time, size on disk, the largest logit difference from
PyTorch, and the real-time factor (compute seconds / audio seconds) of
PyTorch eager fp32, ONNX Runtime fp32, ONNX Runtime INT8 (the MatMuls; the
convolutions kept fp32, as the export does) and, to show why they are kept,
INT8 with the convolutions quantised too; at batch 1 (one 4 s utterance) and
batched (4 x 4 s). The kinds are timed in turn within each round (rotating
the order) and the median round is reported. ``python -m bench export
[--quick] [--threads N] [--rounds N]`` (--quick: the demo-size model only).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

SR = 16000
SECONDS = 4.0


def _xlsr_300m_merged():
    from peft import LoraConfig, get_peft_model
    from transformers import Wav2Vec2ForCTC

    from trainers.model import xlsr_300m_config

    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(xlsr_300m_config())
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj"], bias="none")
    peft = get_peft_model(model, lora)
    for name, p in peft.named_parameters():  # a trained adapter is not zero: make the merge change the weights
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.01)
    return peft.merge_and_unload().eval()


def _demo_size(tmp: Path):
    from transformers import Wav2Vec2ForCTC

    from kidconsole.demo import TINY
    from trainers.tiny import build_tiny

    kw = dict(TINY)
    return Wav2Vec2ForCTC.from_pretrained(build_tiny(tmp / "demo-size", **kw)).eval()


def _inputs(batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, int(SECONDS * SR))).astype(np.float32)
    return x, np.ones_like(x, dtype=np.int64)


def _interleaved(fns: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each callable, the callables run in turn within a round (rotated each round)."""
    names = list(fns)
    times = {n: [] for n in names}
    for n in names:
        fns[n]()  # warm-up: the first run allocates
    for r in range(rounds):
        for n in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            fns[n]()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(t) for n, t in times.items()}


def measure(label: str, model, tmp: Path, threads: int, rounds: int) -> list[dict]:
    import onnxruntime as ort

    from trainers.onnx import export_onnx, model_bytes, quantize_int8

    torch.set_num_threads(threads)
    folder = tmp / f"onnx-{label.replace(' ', '-')}"
    folder.mkdir()
    t0 = time.perf_counter()
    fp32 = export_onnx(model, folder / "fp32.onnx")
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    int8 = quantize_int8(fp32, folder / "int8.onnx")
    quant_s = time.perf_counter() - t0
    # the convolutions quantised too (the default of quantize_dynamic): what the export avoids
    from onnxruntime.quantization import QuantType, quantize_dynamic

    int8_conv = folder / "int8-conv.onnx"
    quantize_dynamic(str(fp32), str(int8_conv), weight_type=QuantType.QInt8)
    torch_bytes = sum(p.numel() * p.element_size() for p in model.parameters())

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    t0 = time.perf_counter()
    sessions = {"onnx fp32": ort.InferenceSession(str(fp32), opts, providers=["CPUExecutionProvider"])}
    load_s = time.perf_counter() - t0
    sessions["onnx int8"] = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
    sessions["onnx int8, conv too"] = ort.InferenceSession(str(int8_conv), opts, providers=["CPUExecutionProvider"])
    sizes = {"pytorch fp32": torch_bytes, "onnx fp32": model_bytes(fp32), "onnx int8": model_bytes(int8),
             "onnx int8, conv too": model_bytes(int8_conv)}

    rows = {name: {"model": label, "kind": name, "size": sizes[name]} for name in sizes}
    for batch in (1, 4):
        x, mask = _inputs(batch)
        tx, tm = torch.from_numpy(x), torch.from_numpy(mask)
        with torch.no_grad():
            ref = model(input_values=tx, attention_mask=tm).logits.numpy()

        def run_torch():
            with torch.no_grad():
                model(input_values=tx, attention_mask=tm)

        fns = {"pytorch fp32": run_torch}
        for name, s in sessions.items():
            fns[name] = lambda s=s: s.run(["logits"], {"input_values": x, "attention_mask": mask})
            got = s.run(["logits"], {"input_values": x, "attention_mask": mask})[0]
            rows[name][f"diff_b{batch}"] = float(np.abs(got - ref).max())
            rows[name][f"agree_b{batch}"] = float((got.argmax(-1) == ref.argmax(-1)).mean())
        med = _interleaved(fns, rounds)
        for name, sec in med.items():
            rows[name][f"rtf_b{batch}"] = sec / (batch * SECONDS)
    for r in rows.values():
        r["speedup_b1"] = rows["pytorch fp32"]["rtf_b1"] / r["rtf_b1"]
        r["speedup_b4"] = rows["pytorch fp32"]["rtf_b4"] / r["rtf_b4"]
        r["size_share"] = r["size"] / torch_bytes
    rows["onnx fp32"]["notes"] = f"export {export_s:.0f} s, session load {load_s:.1f} s"
    rows["onnx int8"]["notes"] = f"quantisation {quant_s:.0f} s"
    return list(rows.values())


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench export", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="the demo-size model only")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    from trainers.quiet import quiet_libraries

    quiet_libraries()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.quick:
            t0 = time.perf_counter()
            big = _xlsr_300m_merged()
            build_s = time.perf_counter() - t0
            big_rows = measure("XLS-R 300M", big, tmp, args.threads, args.rounds)
            big_rows[0]["notes"] = f"built with LoRA merged in {build_s:.0f} s"
            rows += big_rows
            del big
        rows += measure("demo size", _demo_size(tmp), tmp, args.threads, args.rounds)

    from kidconsole.report.exports import rtf

    load = os.getloadavg()
    table = Table(title=f"exports on the CPU ({os.cpu_count()} cores, {args.threads} threads; {SECONDS:g} s "
                        f"utterances, batch 1 and 4; load average {load[0]:.1f} at the end)")
    for col in ("model", "kind", "size", "size vs fp32", "RTF b1", "speed-up b1", "RTF b4", "speed-up b4",
                "max |Δlogit| b4", "argmax agree b4", "notes"):
        table.add_column(col, justify="left" if col in ("model", "kind", "notes") else "right")
    for r in rows:
        table.add_row(r["model"], r["kind"], f"{r['size'] / 1e6:.1f} MB", f"{100 * r['size_share']:.0f}%",
                      rtf(r["rtf_b1"]), f"{r['speedup_b1']:.2f}x", rtf(r["rtf_b4"]), f"{r['speedup_b4']:.2f}x",
                      "—" if "diff_b4" not in r else f"{r['diff_b4']:.1e}",
                      "—" if "agree_b4" not in r else f"{100 * r['agree_b4']:.1f}%", r.get("notes", ""))
    table.caption = ("targets: ONNX Runtime >= 1.5x PyTorch eager at batch 1; INT8 <= 30% of the fp32 size; "
                     "ONNX fp32 logits within 1e-3 of PyTorch")
    Console(width=max(Console().width, 200)).print(table)
