"""A client of ``/v1/stream``: a WAV file (or the microphone) sent in real time, partials and finals printed.

What ``kidconsole listen`` runs, and the shape an app's own client takes
(docs/deploy.md has the same in a dozen lines): 16-bit mono PCM at 16 kHz in
binary frames of ``chunk_ms``, ``{"type": "end"}`` when the audio ends, then
every message until the server's ``end`` answer. Light: numpy, soundfile and
the ``websockets`` client, imported when used.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import unicodedata
from typing import Callable, Iterator

import numpy as np

RATE = 16000


def visible(text: str) -> str:
    """Text from the network made safe to print: control characters shown as escapes, never obeyed."""
    return "".join(c if unicodedata.category(c)[0] != "C" else f"\\x{ord(c):02x}" for c in str(text))


def ws_url(url: str) -> str:
    """``http://host:port`` (a server's address) or a ``ws://`` URL as the stream endpoint's URL."""
    url = url.rstrip("/")
    if url.startswith("http"):
        url = "ws" + url[4:]
    return url if url.endswith("/v1/stream") else url + "/v1/stream"


def wav_chunks(path: str, chunk_ms: float) -> Iterator[np.ndarray]:
    """A sound file as 16 kHz mono 16-bit chunks (resampled by linear interpolation when it is not 16 kHz)."""
    import soundfile as sf

    from kidconsole.errors import KidconsoleError

    try:
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise KidconsoleError(f"{path}: cannot read the audio: {e}") from e
    wave = wave.mean(axis=1)
    if rate != RATE:  # for a demonstration client a linear resampler does; the server takes 16 kHz only
        wave = np.interp(np.arange(int(len(wave) * RATE / rate)) * rate / RATE, np.arange(len(wave)), wave)
    pcm = (np.clip(wave, -1, 1) * 32767).astype("<i2")
    step = int(RATE * chunk_ms / 1000)
    for k in range(0, len(pcm), step):
        yield pcm[k:k + step]


def microphone_chunks(chunk_ms: float) -> Iterator[np.ndarray]:
    """The default input device's chunks; the device is opened here, so that its absence is said at once."""
    from kidconsole.errors import KidconsoleError

    try:
        import sounddevice
    except (ImportError, OSError) as e:
        raise KidconsoleError(f"no microphone here ({e}): give --wav FILE, or install sounddevice") from e
    try:
        mic = sounddevice.InputStream(samplerate=RATE, channels=1, dtype="int16",
                                      blocksize=int(RATE * chunk_ms / 1000))
    except Exception as e:  # PortAudioError: no input device
        raise KidconsoleError(f"no microphone here ({e}): give --wav FILE") from e

    def chunks():
        with mic:
            while True:
                data, _ = mic.read(mic.blocksize)
                yield data[:, 0].copy()
    return chunks()


def stream(url: str, chunks: Iterator[np.ndarray], on_message: Callable[[dict], None], *, chunk_ms: float,
           realtime: bool = True, api_key: str | None = None, vad: bool = True) -> None:
    """Sends ``chunks`` (paced in real time unless told not to), then the end message; ``on_message`` sees every
    message until the server's answer to it."""
    from websockets.exceptions import ConnectionClosed, InvalidHandshake
    from websockets.sync.client import connect

    from kidconsole.errors import KidconsoleError

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        ws = connect(ws_url(url) + ("" if vad else "?vad=0"), additional_headers=headers, open_timeout=30)
    except (InvalidHandshake, OSError, TimeoutError) as e:
        raise KidconsoleError(f"{ws_url(url)}: {visible(e)}") from None
    with ws:
        failed: list[BaseException] = []

        def send():
            try:
                t0 = time.monotonic()
                for k, chunk in enumerate(chunks):
                    ws.send(chunk.tobytes())
                    if realtime:  # the k-th chunk ends at k+1 chunk durations: wait for the clock to get there
                        time.sleep(max(0.0, t0 + (k + 1) * chunk_ms / 1000 - time.monotonic()))
                ws.send(json.dumps({"type": "end"}))
            except ConnectionClosed:  # the reader says why
                pass
            except Exception as e:  # the audio could not be read: the stream ends here
                failed.append(e)
                ws.close()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            for raw in ws:
                message = json.loads(raw)
                on_message(message)
                if message.get("type") == "end":
                    break
        except ConnectionClosed as e:
            if not failed:
                raise KidconsoleError(f"the server closed the stream: {visible(e.rcvd.reason if e.rcvd else e)}") \
                    from None
        sender.join(timeout=1)
        if failed:
            raise failed[0]


class Printer:
    """Partials rewritten in place on a terminal (one line each otherwise), a line per final."""

    def __init__(self, out=sys.stdout):
        self.out, self.tty = out, out.isatty()
        self.finals = 0

    def __call__(self, m: dict) -> None:
        kind = m.get("type")
        if kind == "partial":
            line = f"… {m.get('start', 0):7.2f}  {visible(m.get('phones', ''))}"
            self.out.write(f"\r\x1b[2K{line[:200]}" if self.tty else line + "\n")
        elif kind == "final":
            self.finals += 1
            line = (f"{m.get('start', 0):7.2f}-{m.get('end', 0):.2f} s  {visible(m.get('hangul', ''))}  "
                    f"[{visible(m.get('phones', ''))}]  ({visible(m.get('reason', ''))})")
            self.out.write(("\r\x1b[2K" if self.tty else "") + line + "\n")
        self.out.flush()
