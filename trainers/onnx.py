"""ONNX: export of a CTC model (wav2vec2 family), its ONNX Runtime session as a forward, INT8 quantisation.

The graph takes ``input_values`` (batch x samples, float32, normalised as the
feature extractor does) and, for a model that takes one (the feature
extractor's ``return_attention_mask``), ``attention_mask`` (batch x samples,
int64); it gives ``logits`` (batch x frames x vocab); batch and length are
dynamic axes.
It is traced by torch.export (``dynamo=True``): the TorchScript exporter bakes
the example's padding into transformers' mask code and gives wrong logits on
other lengths.

INT8 is ONNX Runtime's dynamic quantisation of the MatMul weights (int8,
activations quantised per batch at run time). The convolutions (the feature
encoder on the raw wave and the positional convolution) stay fp32: ONNX
Runtime has no fast ConvInteger kernel on x86 (quantised, the convolutions of
XLS-R 300M took 3x longer than in fp32 and over half of the INT8 model's time),
and the first convolution sees the raw wave, where 8 bits lose the most.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from kidconsole.errors import KidconsoleError
from trainers.data import output_frames
from trainers.evaluate import Output

INPUTS = ("input_values", "attention_mask")
QUANTISED_OPS = ("MatMul", "Gemm")


class _Logits(torch.nn.Module):
    """The model with positional inputs and only the logits out: what the ONNX graph holds."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_values, attention_mask=None):
        return self.model(input_values=input_values, attention_mask=attention_mask).logits


def export_onnx(model, path: str | Path, sample_rate: int = 16000, masked: bool = True) -> Path:
    """Writes ``model`` (a plain CTC model in fp32) to ``path``; written to a temporary name and renamed.
    ``masked``: the model takes an attention mask (else the graph has ``input_values`` alone)."""
    from torch.export import Dim

    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}")
    model = model.float().eval()
    # two utterances of different lengths: the mask's padding path is traced too
    x = torch.randn(2, 2 * sample_rate)
    mask = torch.ones(2, 2 * sample_rate, dtype=torch.int64)
    mask[1, sample_rate:] = 0
    names = list(INPUTS if masked else INPUTS[:1])
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1.8e9  # protobuf's 2 GB limit
    dims = {0: Dim.DYNAMIC, 1: Dim.DYNAMIC}
    with torch.no_grad():
        torch.onnx.export(_Logits(model), (x, mask)[:len(names)], str(tmp), input_names=names,
                          output_names=["logits"], dynamic_shapes={n: dims for n in names}, dynamo=True,
                          external_data=big, verbose=False)
    tmp.replace(path)
    if big:
        Path(f"{tmp}.data").replace(f"{path}.data")
    return path


def quantize_int8(src: str | Path, dst: str | Path, per_channel: bool = False) -> Path:
    """Dynamic INT8 of ``src``'s MatMul weights into ``dst``; everything else (the convolutions) stays fp32."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    dst = Path(dst)
    tmp = dst.with_name(f".tmp-{dst.name}")
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs every tensor whose shape it cannot infer
    quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=per_channel,
                     op_types_to_quantize=list(QUANTISED_OPS), extra_options={"MatMulConstBOnly": True})
    tmp.replace(dst)
    return dst


def model_bytes(path: str | Path) -> int:
    """Size on disk of an ONNX model with its external data, or of a folder's weights."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.iterdir()
                   if f.suffix in (".safetensors", ".bin", ".onnx", ".data") and f.is_file())
    data = Path(f"{path}.data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def providers(device: str) -> list[str]:
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    have = ort.get_available_providers()
    if "CUDAExecutionProvider" not in have:
        raise KidconsoleError(f"--device {device}: this ONNX Runtime has no CUDA provider "
                              f"(it has {', '.join(have)}); install onnxruntime-gpu or use --device cpu")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OnnxForward:
    """An ONNX Runtime session as a forward (trainers.evaluate): logits and frames of a batch, no loss."""

    def __init__(self, path: str | Path, config, feature_extractor, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        self.path, self.config, self.feature_extractor = Path(path), config, feature_extractor
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=providers(device))
        except Exception as e:  # ORT raises its own classes for a corrupt or unsupported graph
            raise KidconsoleError(f"{self.path}: ONNX Runtime cannot load it: {str(e).splitlines()[0]}") from e
        self.device = torch.device("cpu")  # logits come back in host memory
        self.kernels, self.strides = tuple(config.conv_kernel), tuple(config.conv_stride)
        self.masked = INPUTS[1] in {i.name for i in self.session.get_inputs()}

    def __call__(self, batch) -> Output:
        values = batch.input_values.numpy()
        lengths = batch.lengths.numpy()
        feed = {INPUTS[0]: values}
        if self.masked:
            feed[INPUTS[1]] = (np.arange(values.shape[1]) < lengths[:, None]).astype(np.int64)
        (logits,) = self.session.run(["logits"], feed)
        frames = torch.tensor([output_frames(int(n), self.kernels, self.strides) for n in lengths])
        return Output(torch.from_numpy(logits), frames, None)

    def evaluating(self):
        return contextlib.nullcontext()


class Difference(NamedTuple):
    max_abs: float       # largest |logit difference| over the valid frames
    argmax_agree: float  # share of valid frames whose best id is the same
    utterances: int


@torch.no_grad()
def logit_difference(ours, reference, batches) -> Difference:
    """How far a forward's logits are from the reference's on real batches (valid frames only: padded
    frames are masked out of everything downstream)."""
    worst, same, total, n = 0.0, 0, 0, 0
    with reference.evaluating():
        for batch in batches:
            a, b = ours(batch), reference(batch)
            for la, lb, f in zip(a.logits.float().cpu(), b.logits.float().cpu(), a.frames.tolist()):
                worst = max(worst, float((la[:f] - lb[:f]).abs().max()))
                same += int((la[:f].argmax(-1) == lb[:f].argmax(-1)).sum())
                total += f
                n += 1
    return Difference(worst, same / total if total else float("nan"), n)
