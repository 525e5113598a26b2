"""What a command needs beyond the light install, and the one message that says which extra brings it.

``pip install kidconsole`` is the console, the light commands and the reports; the extras add the heavy side
(pyproject.toml): ``train`` (torch, transformers, peft, accelerate, ONNX: training, scoring, exports,
transcription), ``serve`` (the HTTP server), ``mirror`` (MLflow), ``all``. A command checks before it starts
a process or imports anything heavy, so a missing extra is one line, not a traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Callable

from kidconsole.errors import KidconsoleError

# the modules each extra brings (the first missing one is named in the message)
_TRAIN = ("torch", "torchaudio", "transformers", "peft", "accelerate", "silero_vad")
EXTRAS = {
    "train": _TRAIN,
    "serve": _TRAIN + ("fastapi", "uvicorn", "multipart"),  # the server loads models as training does
    "mirror": ("mlflow", "sqlalchemy", "alembic"),
}


def missing(extra: str) -> str | None:
    """The first module of ``extra`` this Python cannot import (None: all there). Looks, never imports."""
    return next((m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None), None)


def need(extra: str, what: str) -> None:
    """Raise the install hint when ``what`` (a command, in the user's words) lacks ``extra``."""
    module = missing(extra)
    if module is not None:
        raise KidconsoleError(f"{what} needs the {extra} extra ({module} is not installed): "
                              f"pip install 'kidconsole[{extra}]'")


def needing(extra: str, what: str, handler: Callable[[Any], int]) -> Callable[[Any], int]:
    """``handler`` (a command's function) preceded by ``need(extra, what)``: how a heavy command registers."""
    def run(args: Any) -> int:
        need(extra, what)
        return handler(args)

    return run
