"""Library chatter off for the user-facing commands (transcribe, export, serve): weight-loading progress bars,
exporter step logs and deprecation warnings say nothing about the user's audio."""

from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # the exporter's registry warns about every torchvision operator it cannot find
    for name in ("torch.onnx", "torch.onnx._internal.exporter._registration", "torch._dynamo", "torch.export",
                 "onnxscript", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.onnx.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
