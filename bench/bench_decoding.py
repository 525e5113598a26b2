"""Greedy against beam search against beam search with a phone LM, on the demo's synthetic children (CPU).

The demo's LoRA model (bench.synth_runs: the demo's corpus, base and LoRA run, shared with ``bench audit``)
decodes the children's test split of a second corpus (seed 1: speakers and utterances it never saw) three
ways, each a scoring run (``python -m trainers.score --decoder ...``): greedy; a beam of 16 without an LM;
the same beam with a 3-gram phone LM built from the LoRA run's train manifest (``kidconsole lm build RUN``,
stored in RUN/exports/lm/), its weight tuned on the second corpus's children's validation split (never on
test). Reported: PER overall and per age group with the speaker-bootstrap 95% interval of each decoder's
difference to greedy; the share of the phones where greedy differs from the reference that the LM decode
"corrects" to the reference (on real children some of those are what the child said: what the LM hides),
and the phones it turns from right to wrong; decoding speed as a real-time factor, batch 1 and batched, and
its ratio to greedy on the same utterances (forward pass included: what a user waits for). And, on a third
corpus (seed 2) whose children say one phone of each utterance that has one (S, SS, G, GG, Kh) as a child's
typical substitute under the canonical label (``synthesize(mispronounce=1.0)``), how often greedy and the
LM decode (at the chosen weight, and at 1 and 2) show what was said, and how often the LM hides a
substitution greedy showed.

``python -m bench decoding [--keep DIR]`` (the same ``--keep`` folder as ``bench audit`` reuses its runs).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.synth_runs import corpus, demo_models
from bench.tone_runs import delta_cells, finished, run_python
from kidconsole.decoding import DecoderOptions
from kidconsole.phonemes import WORD_SEP

WEIGHTS = "0.1,0.25,0.5,1,2"
BEAM = 16
MISPRONOUNCE = 1.0


def score(root: Path, name: str, model: Path, m: dict, *flags) -> Path:
    run = root / "runs" / name
    if not finished(run):
        run_python("-m", "trainers.score", "--model", model, "--manifest", m["child_test"], "--valid-manifest",
                   m["child_validation"], "--run-dir", run, *flags)
    return run


def by_reference(ref: list[str], hyp: list[str]) -> list[str | None]:
    """For each reference phone, the hypothesis phone aligned to it (None: deleted)."""
    from kidconsole.metrics import align

    out = []
    for op, r, h in align(ref, hyp):
        if r is not None:
            out.append(h)
    return out


def corrections(greedy: Path, lm: Path) -> dict[str, tuple[int, int, int]]:
    """Per age group (and "all"): (reference phones greedy got wrong, of those the LM decode got right,
    phones greedy got right that the LM decode got wrong); word separators aside."""
    from kidconsole.report.buckets import DEFAULT_EDGES, bin_values, edge_labels

    rows = {}
    for side, run in (("g", greedy), ("l", lm)):
        for line in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            rows.setdefault(d["id"], {"age": d["age"], "ref": d["ref"]})[side] = d["hyp"]
    labels = edge_labels("age_group", DEFAULT_EDGES["age_group"]) + ["unknown"]
    out: dict[str, list[int]] = {}
    for d in rows.values():
        ref = d["ref"].split()
        g, lm_ = by_reference(ref, d["g"].split()), by_reference(ref, d["l"].split())
        age = labels[int(bin_values([float("nan") if d["age"] is None else d["age"]], DEFAULT_EDGES["age_group"])[0])]
        for key in ("all", age):
            c = out.setdefault(key, [0, 0, 0])
            for r, a, b in zip(ref, g, lm_):
                if r == WORD_SEP:
                    continue
                c[0] += a != r
                c[1] += a != r and b == r
                c[2] += a == r and b != r
    return {k: tuple(v) for k, v in out.items()}


def substitutions(truth: Path, greedy: Path, lm: Path) -> dict[str, list[int]]:
    """Per age group (and "all") over the test utterances said with a substitution (synth's ``mispronounce``):
    [substitutions, greedy decodes the phone said, the LM decode does, greedy shows it but the LM decode
    gives the canonical phone (hidden), greedy gives the canonical phone, the LM decode does]."""
    from kidconsole.report.buckets import DEFAULT_EDGES, bin_values, edge_labels

    said = {d["id"]: d for d in map(json.loads, truth.read_text(encoding="utf-8").splitlines())}
    hyps: dict[str, dict] = {}
    for side, run in (("g", greedy), ("l", lm)):
        for line in (run / "predictions.jsonl").read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            if d["id"] in said:
                hyps.setdefault(d["id"], {"age": d["age"], "ref": d["ref"]})[side] = d["hyp"]
    labels = edge_labels("age_group", DEFAULT_EDGES["age_group"]) + ["unknown"]
    out: dict[str, list[int]] = {}
    for uid, d in hyps.items():
        k, canonical, spoken = said[uid]["index"], said[uid]["canonical"], said[uid]["said"]
        ref = d["ref"].split()
        g, l_ = by_reference(ref, d["g"].split())[k], by_reference(ref, d["l"].split())[k]
        age = labels[int(bin_values([float("nan") if d["age"] is None else d["age"]], DEFAULT_EDGES["age_group"])[0])]
        for key in ("all", age):
            c = out.setdefault(key, [0, 0, 0, 0, 0, 0])
            c[0] += 1
            c[1] += g == spoken
            c[2] += l_ == spoken
            c[3] += g == spoken and l_ == canonical
            c[4] += g == canonical
            c[5] += l_ == canonical
    return out


def speed(model: Path, manifest: Path, options: dict[str, DecoderOptions], repeats: int = 2) -> dict:
    """Real-time factor per decoder, batch 1 and batched (60 s of padded audio a pass), forward included:
    the best of ``repeats`` passes over the same utterances."""
    import torch

    from trainers.decode import build_decoder
    from trainers.recogniser import load_recogniser
    from trainers.transcribe import Transcriber, collect_inputs

    torch.set_num_threads(1)
    rec = load_recogniser(model)
    items = collect_inputs([str(manifest)])
    out = {}
    for name, opts in options.items():
        decoder = build_decoder(opts, rec.vocab)
        for batch, (seconds, utts) in (("batch 1", (60.0, 1)), ("batched", (60.0, 64))):
            tr = Transcriber(rec, batch_seconds=seconds, max_utterances=utts, decoder=decoder)
            usable, durations, _ = tr.headers(items)
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                tr.run(usable, durations)
                best = min(best, time.perf_counter() - t0)
            out[(name, batch)] = best / sum(durations)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench decoding")
    ap.add_argument("--keep", metavar="DIR", help="the runs' folder (bench audit's: its runs are used again)")
    ap.add_argument("--weights", default=WEIGHTS, help=f"LM weights tried on validation (default {WEIGHTS})")
    args = ap.parse_args(argv)
    console = Console(width=150)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        _, run = demo_models(root)
        model = run / "exports" / "merged"
        m = corpus(root, seed=1)  # its test and validation splits are clean: the label errors are in train
        lm = run / "exports" / "lm" / "phones.arpa"
        if not lm.exists():
            run_python("-m", "kidconsole", "lm", "build", run, "--order", "3")
        arms = {"greedy": score(root, "dec-greedy", model, m),
                f"beam {BEAM}": score(root, f"dec-beam{BEAM}", model, m, "--decoder", "beam", "--beam", str(BEAM)),
                f"beam {BEAM} + phone LM": score(root, f"dec-beam{BEAM}-lm", model, m, "--decoder", "beam", "--beam",
                                                 str(BEAM), "--lm", lm, "--tune-lm-weights", args.weights)}
        from kidconsole.report.summary import report_for

        test = [json.loads(x) for x in (arms[f"beam {BEAM} + phone LM"] / "events.jsonl").read_text().splitlines()
                if '"test"' in x][-1]
        greedy = report_for(arms["greedy"])
        ages = [b.label for b in greedy.dimensions["age_group"] if b.n]
        t = Table(title=f"PER on the children's test split ({greedy.n} utterances, {greedy.overall.speakers} speakers); "
                        f"Δ = decoder − greedy [95% CI over speakers]", title_justify="left")
        t.add_column("decoder")
        t.add_column("PER", justify="right")
        t.add_column("Δ PER", justify="right")
        t.add_column("95% CI", justify="right")
        for a in ages:
            t.add_column(f"age {a}", justify="right")
        for name, arm in arms.items():
            rep = report_for(arm, arms["greedy"], n_boot=1000) if name != "greedy" else greedy
            cells = ["", ""]
            if name != "greedy":
                d = next(d for d in rep.comparison.deltas if d.dimension == "all" and d.metric == "per")
                cells = list(delta_cells(d))
            per_age = {b.label: b.rate("per") for b in rep.dimensions["age_group"]}
            t.add_row(name, f"{100 * rep.overall.rate('per'):.2f}", *cells,
                      *(f"{100 * per_age[a]:.1f}" for a in ages))
        t.caption = (f"LM: 3-gram of the LoRA run's train manifest ({lm}); weight {test['decoder']} chosen on the "
                     f"validation split: " + ", ".join(f"{w}: {100 * p:.2f}%" for w, p in test["lm_weight_per"].items()))
        console.print(t)

        c = corrections(arms["greedy"], arms[f"beam {BEAM} + phone LM"])
        t = Table(title="What the LM changes: reference phones greedy decodes otherwise, and the share of them the LM "
                        "decode turns into the reference (on real children, some are what the child said)",
                        title_justify="left")
        for col in ("age group", "phones greedy differs on", "turned to the reference", "share", "right turned wrong"):
            t.add_column(col, justify="left" if col == "age group" else "right")
        for key in ["all", *ages]:
            if key in c:
                wrong, fixed, broke = c[key]
                t.add_row(key, str(wrong), str(fixed), f"{100 * fixed / max(1, wrong):.1f}%", str(broke))
        console.print(t)

        weight = float(test["decoder"].split("+lm")[1]) if "+lm" in test["decoder"] else 0.0
        mis = corpus(root, seed=2, planted=0.0, mispronounce=MISPRONOUNCE)
        g2 = score(root, "mis-greedy", model, mis)
        t = Table(title=f"What a child said that the LM hides: a third corpus (seed 2) whose children say one phone "
                        f"of {100 * MISPRONOUNCE:.0f}% of their utterances that have one (S, SS, G, GG, Kh) as a "
                        f"typical substitute (D, DD, D, DD, Th) under the canonical label; its test split",
                        title_justify="left")
        for col in ("LM weight", "age group", "substitutions", "greedy: said / canonical", "LM: said / canonical",
                    "hidden by the LM (greedy showed it)"):
            t.add_column(col, justify="left" if col in ("LM weight", "age group") else "right")
        pers = []
        for w in dict.fromkeys([weight, 1.0, 2.0]):
            l2 = score(root, f"mis-beam-lm{w:g}", model, mis, "--decoder", "beam", "--beam", str(BEAM), "--lm", lm,
                       "--lm-weight", str(w))
            sub = substitutions(mis["mispronounced"], g2, l2)
            pers.append(f"{w:g}: {100 * report_for(l2).overall.rate('per'):.2f}%")
            for key in ["all", *sorted(k for k in sub if k != "all")] if w == weight else ["all"]:
                n, g, lm_shows, hidden, g_canon, lm_canon = sub[key]
                t.add_row(f"{w:g}" + (" (chosen)" if w == weight else "") if key == "all" else "", key, str(n),
                          f"{g} / {g_canon}", f"{lm_shows} / {lm_canon}", f"{hidden} of {g}")
        t.caption = (f"PER against the canonical labels: greedy {100 * report_for(g2).overall.rate('per'):.2f}%; with "
                     f"the LM at " + ", ".join(pers))
        console.print(t)

        options = {"greedy": DecoderOptions(), f"beam {BEAM}": DecoderOptions("beam", beam=BEAM),
                   f"beam {BEAM} + phone LM": DecoderOptions("beam", beam=BEAM, lm=str(lm), lm_weight=weight)}
        rtf = speed(model, m["child_test"], options)
        t = Table(title="Decoding speed on the same utterances (1 thread, forward pass included): real-time factor "
                        "and its ratio to greedy", title_justify="left")
        for col in ("decoder", "RTF batch 1", "× greedy", "RTF batched", "× greedy"):
            t.add_column(col, justify="left" if col == "decoder" else "right")
        for name in options:
            row = [name]
            for batch in ("batch 1", "batched"):
                row += [f"{rtf[(name, batch)]:.4f}", f"{rtf[(name, batch)] / rtf[('greedy', batch)]:.2f}"]
            t.add_row(*row)
        console.print(t)
