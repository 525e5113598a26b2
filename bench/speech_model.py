"""What the speech benchmarks (bench_long, bench_stream) decode with: the demo's base model, a tiny Wav2Vec2ForCTC
trained on the synthetic corpus's adult voices (kidconsole.demo: built once, then cached in the work folder),
and its adult test split. A change to the synthesiser makes a new corpus and so a new base (the demo's cache
keys); ``--model`` and ``--manifest`` on the benchmarks name another. Speech, not tones: a voice-activity detector hears the synthetic voices, not tones."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "work" / "bench-speech"


def demo_base(work: Path = WORK, console=None) -> tuple[Path, Path]:
    """(the trained base model's export, the adult test manifest)."""
    from rich.console import Console

    from kidconsole.demo import SCALES, Paths, ensure_base, ensure_corpus, prepare_manifests

    console = console or Console(stderr=True)
    paths = Paths(work.resolve())
    paths.work.mkdir(parents=True, exist_ok=True)
    scale = SCALES["quick"]
    stamp = ensure_corpus(paths, scale, 0, console)
    manifests = prepare_manifests(paths, 0, console, progress=False)
    base = ensure_base(paths, scale, stamp, manifests, console, [], progress=False)
    return Path(base.model), manifests["adult_test"]


def add_model_arguments(ap) -> None:
    """--keep, --model and --manifest: what a speech benchmark decodes with."""
    ap.add_argument("--keep", help="work folder for the base model (default work/bench-speech)")
    ap.add_argument("--model", help="decode with this model instead of the demo's base (with --manifest)")
    ap.add_argument("--manifest", help="the test utterances for --model")


def model_and_manifest(args) -> tuple[Path, Path]:
    """The model and test manifest the arguments of ``add_model_arguments`` name (the demo's base by default)."""
    if args.model:
        return Path(args.model), Path(args.manifest)
    return demo_base(Path(args.keep) if args.keep else WORK)


if __name__ == "__main__":
    print(demo_base())
