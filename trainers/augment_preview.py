"""``kidconsole augment preview``: an utterance as it is and as each of a phase's augmentations makes it.

WAV files (16-bit PCM at the config's sample rate) and a spectrogram PNG of each, drawn with matplotlib
(the train extra): a picture with time and frequency axes and a dB scale reads at a glance, where a bare
image of the STFT would need a legend written beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from kidconsole import rundir
from kidconsole.config import load_config
from kidconsole.config.augment import ORDER, ranges_text
from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import WORD_SEP
from kidconsole.job_arguments import add_augment_preview_arguments
from trainers.augment import perturb_speed
from trainers.data import load_rows, subset, weighted
from trainers.waves import load_wave
from trainers.wave_augment import Chain, prepare


def spectrogram_png(wave: np.ndarray, sample_rate: int, path: Path, title: str) -> None:
    """A log-magnitude spectrogram (25 ms Hann windows every 10 ms, 0 to Nyquist, 80 dB below the peak)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    win, hop = int(0.025 * sample_rate), int(0.010 * sample_rate)
    x = np.pad(wave.astype(np.float64), (0, max(0, win - len(wave))))
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop] * np.hanning(win)
    db = 20 * np.log10(np.abs(np.fft.rfft(frames, axis=1)).T + 1e-9)
    top = db.max()
    fig, ax = plt.subplots(figsize=(max(4.0, min(16.0, 1.6 * len(wave) / sample_rate + 2)), 3.2), dpi=100)
    im = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=top - 80, vmax=top,
                   extent=(0, len(wave) / sample_rate, 0, sample_rate / 2000))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="dB")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _find(cfg, pi: int, uid: str):
    """(rows of the phase, index of the utterance, its manifest number) as the trainer builds them."""
    phase = cfg.phases[pi]
    rows, sources = [], []
    for m, (path, weight) in enumerate(cfg.train_manifests(phase)):
        rows += weighted(subset(load_rows(path), phase.fraction, cfg.seed), weight, cfg.seed)
        sources += [m] * (len(rows) - len(sources))
    for i, row in enumerate(rows):
        if row.id == uid:
            return rows, i, sources[i]
    raise KidconsoleError(f"utterance {uid!r} is not among phase {pi + 1}'s {len(rows)} training utterances "
                          f"({' + '.join(p for p, _ in cfg.train_manifests(phase))})")


def _write(out: Path, name: str, wave: np.ndarray, sample_rate: int, title: str) -> tuple[str, str]:
    peak = float(np.abs(wave).max()) if len(wave) else 0.0
    scaled = wave / peak * 0.9 if peak > 1.0 else wave  # a WAV clips above full scale; the model sees the shape
    sf.write(out / f"{name}.wav", scaled.astype(np.float32), sample_rate, subtype="PCM_16")
    spectrogram_png(wave, sample_rate, out / f"{name}.png", title)
    return f"{name}.wav", f"{name}.png"


def preview(config: str, uid: str, phase: int, epoch: int, out_dir: str, overrides=()) -> list[tuple[str, ...]]:
    """Writes the files; returns the rows of the table printed: (file, what, applied)."""
    path = Path(config)
    cfg = load_config(path / rundir.CONFIG if path.is_dir() else path, overrides)
    if not 1 <= phase <= len(cfg.phases):
        raise KidconsoleError(f"--phase {phase}: {path} has phases 1 to {len(cfg.phases)}")
    pi, sr = phase - 1, cfg.data.sample_rate
    rows, index, m = _find(cfg, pi, uid)
    aug = cfg.manifest_augments(cfg.phases[pi])[m]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wave = load_wave(rows[index].audio, sr).samples
    key = (cfg.seed, pi, epoch - 1, index)
    table = [(*_write(out, "original", wave, sr, f"{uid}: original"), "as recorded", "-")]
    if aug.speed_prob > 0:
        for factor in (0.9, 1.1):
            name = f"speed-{factor:g}"
            table.append((*_write(out, name, perturb_speed(wave, sr, factor), sr, f"{uid}: speed x{factor:g}"),
                          f"speed x{factor:g} (the reference's factors)", "speed"))
    wf = aug.waveform
    for name in wf.active():
        alone = aug.model_copy(update={"speed_prob": 0.0, "waveform": wf.model_copy(update={
            n: getattr(wf, n).model_copy(update={"prob": 1.0 if n == name else 0.0}) for n in ORDER})})
        chain = Chain(alone, sr, prepare(alone.waveform, sr, f"phases.{pi}.augment.waveform"))
        if name == "concat":  # the next utterances of the manifest stand for the batch's neighbours
            parts = [wave] + [load_wave(r.audio, sr).samples for r in rows[index + 1:index + wf.concat.max_parts]]
            gap = np.zeros(int(wf.concat.gap_ms * sr / 1000), dtype=np.float32)
            result, applied = np.concatenate([x for p in parts for x in (gap, p)][1:]), ["concat"]
            phones = f" {WORD_SEP} ".join(r.phones for r in rows[index:index + len(parts)])
            what = f"joined with the next {len(parts) - 1} utterance(s): {phones}"
        else:
            result, applied = chain.apply(wave.copy(), key, rows, rows[index].speaker)
            what = f"{name} alone: {ranges_text(getattr(wf, name).model_dump())}"
        table.append((*_write(out, name, result, sr, f"{uid}: {name}"), what, ", ".join(applied) or "none"))
    if wf.active() or aug.speed_prob > 0:
        chain = Chain(aug, sr, prepare(wf, sr, f"phases.{pi}.augment.waveform"))
        factor = chain.speed(*key)
        drawn, applied = chain.apply(perturb_speed(wave, sr, factor), key, rows, rows[index].speaker)
        applied = (["speed"] if factor != 1.0 else []) + applied
        table.append((*_write(out, "chain", drawn, sr, f"{uid}: epoch {epoch} ({', '.join(applied) or 'nothing'})"),
                      f"the chain as epoch {epoch} draws it (concatenation depends on the batch: not here)",
                      ", ".join(applied) or "none"))
    return table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="kidconsole augment preview")
    add_augment_preview_arguments(ap)
    args = ap.parse_args(argv)
    try:
        table = preview(args.config, args.utterance, args.phase, args.epoch, args.output, args.overrides)
    except KidconsoleError as e:
        print(f"kidconsole: error: {e}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # ids, phones and paths come from the user's files: shown as text, never as markup
    t = Table(title=Text(f"{args.utterance}, phase {args.phase}: written to {args.output}"))
    for col in ("wav", "png", "what", "applied"):
        t.add_column(col, overflow="fold")
    for row in table:
        t.add_row(*map(Text, row))
    Console().print(t)
    if len(table) == 1:
        print(f"phase {args.phase} has no speed or waveform augmentation: only the original was written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
