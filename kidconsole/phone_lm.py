"""Phone n-gram language models: interpolated Kneser-Ney, written in the ARPA format KenLM reads.

``build_phone_lm`` counts the phones of manifests (or of Korean text through the G2P), estimates an
interpolated Kneser-Ney model over the model's phone set and writes ``NAME.arpa`` with
``NAME.json`` beside it (order, phone set, sources, counts). The beam decoder
(trainers/decode.py) loads the ARPA file with KenLM through torchaudio's flashlight-based CTC decoder;
``check_phone_lm`` is what it asks first: a missing file, a file that is not ARPA, or an LM over
another phone set is a clear error.

Why the estimator is written here (about a hundred lines): KenLM's estimator (``lmplz``) is a C++
program that no Python package ships; arpabo (PyPI, maintained) writes Kneser-Ney models without
backoff weights, so a context's probabilities do not sum to one, and with spaces where KenLM needs
tabs; NLTK's ``KneserNeyInterpolated`` writes no ARPA and pads a sentence with n-1 ``<s>``, contexts
that a KenLM query never asks. This follows KenLM's conventions: one ``<s>``, n-grams that begin
with ``<s>`` keep their raw counts at lower orders, one discount per order from the counts of counts
(Ney's D = n1 / (n1 + 2 n2)), the unigrams interpolated with the uniform distribution over the phone
set so that every phone of the model has a probability.

Light: no torch; the console and the CLI may import it.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from kidconsole.errors import KidconsoleError
from kidconsole.rundir import atomic_write_text, atomic_writer

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = (BOS, EOS, UNK)
MAX_ORDER = 8
FALLBACK_DISCOUNT = 0.5  # when an order has no n-grams seen once or twice (tiny corpora)
ARPA_SUFFIX = ".arpa"
MAX_HEADER_BYTES = 1 << 20  # the ARPA header and unigrams of a phone LM are a few kilobytes


@dataclass
class LmInfo:
    """What ``NAME.json`` records beside ``NAME.arpa``."""
    arpa: str
    order: int
    phones: list[str]                    # the phone set the LM is over (the model's)
    sources: list[str]                   # manifests or text files it was counted from
    sentences: int = 0
    tokens: int = 0
    skipped: int = 0                     # rows without phones, or with phones outside the phone set
    skipped_examples: list[str] = field(default_factory=list)
    ngrams: list[int] = field(default_factory=list)   # listed n-grams per order
    discounts: list[float] = field(default_factory=list)
    seconds: float = 0.0


def info_path(arpa: str | Path) -> Path:
    p = Path(arpa)
    return p.with_name(p.name.removesuffix(ARPA_SUFFIX) + ".json")


# ---------------------------------------------------------------- estimation

def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter]:
    """Raw counts of the n-grams of each sentence padded with one ``<s>`` and one ``</s>``:
    ``counts[n - 1][ngram]``."""
    counts = [Counter() for _ in range(order)]
    for sent in sentences:
        seq = (BOS, *sent, EOS)
        for n in range(1, order + 1):
            c = counts[n - 1]
            for i in range(len(seq) - n + 1):
                g = seq[i:i + n]
                if n == 1 and g[0] == BOS:
                    continue  # <s> is a context, never predicted
                c[g] += 1
    return counts


def _adjusted(counts: list[Counter]) -> list[Counter]:
    """Kneser-Ney's counts: the highest order's raw counts; below it, how many different phones precede
    an n-gram (its continuation count), except that an n-gram beginning with ``<s>`` keeps its raw count
    (nothing can precede ``<s>``)."""
    order = len(counts)
    adj = [Counter() for _ in range(order)]
    adj[-1] = Counter(counts[-1])
    for n in range(order - 1, 0, -1):  # 1-based order n, from the higher order n + 1
        for g in counts[n]:  # (n + 1)-grams seen
            adj[n - 1][g[1:]] += 1
        for g, c in counts[n - 1].items():
            if g[0] == BOS:
                adj[n - 1][g] = c
    return adj


def _discount(adj: Counter) -> float:
    n1 = sum(1 for c in adj.values() if c == 1)
    n2 = sum(1 for c in adj.values() if c == 2)
    if not n1 or not n2:
        return FALLBACK_DISCOUNT
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def estimate(counts: list[Counter], phones: Sequence[str]) -> tuple[list[dict], list[float]]:
    """Per order, ``{ngram: (log10 probability, log10 backoff or None)}``, and the discounts.

    P(w | h) = max(a(h w) - D, 0) / a(h .) + gamma(h) P(w | h minus its first phone), gamma(h) =
    D x (phones seen after h) / a(h .); the unigrams interpolate with 1 / |V| (V: the phones, ``</s>``
    and ``<unk>``). Written as ARPA, an n-gram seen carries its interpolated probability and a context
    its gamma as the backoff weight, so a KenLM query gives the same numbers."""
    order = len(counts)
    adj = _adjusted(counts)
    discounts = [_discount(a) for a in adj]
    vocab = list(dict.fromkeys([*phones, EOS, UNK, *(g[0] for g in counts[0])]))  # a phone counted is in it
    probs: list[dict[tuple, float]] = [dict() for _ in range(order)]
    gammas: list[dict[tuple, float]] = [dict() for _ in range(order)]  # by context, of order n's estimate

    for n in range(1, order + 1):
        a, d = adj[n - 1], discounts[n - 1]
        totals: dict[tuple, float] = defaultdict(float)
        types: dict[tuple, int] = defaultdict(int)
        for g, c in a.items():
            totals[g[:-1]] += c
            types[g[:-1]] += 1
        gam = {h: d * types[h] / t for h, t in totals.items()}
        gammas[n - 1] = gam
        if n == 1:
            t, g0 = totals[()], gam.get((), 1.0)
            for w in vocab:
                probs[0][(w,)] = max(a.get((w,), 0) - d, 0) / t + g0 / len(vocab) if t else 1 / len(vocab)
            continue
        for g, c in a.items():
            probs[n - 1][g] = (c - d) / totals[g[:-1]] + gam[g[:-1]] * _backed_off(g[1:], probs, gammas)

    table = []
    for n in range(1, order + 1):
        rows = {}
        for g, p in probs[n - 1].items():
            bow = gammas[n][g] if n < order and g in gammas[n] else None
            rows[g] = (math.log10(p), None if bow is None else math.log10(bow))
        if n == 1:  # <s>: a context only (probability -99 by convention), with its backoff
            bow = gammas[1].get((BOS,)) if order > 1 else None
            rows[(BOS,)] = (-99.0, None if bow is None else math.log10(bow))
        table.append(rows)
    return table, discounts


def _backed_off(g: tuple, probs: list[dict], gammas: list[dict]) -> float:
    """P(g[-1] | g[:-1]) from the estimates made so far (lower orders), backing off as ARPA does."""
    n = len(g)
    p = probs[n - 1].get(g)
    if p is not None:
        return p
    return gammas[n - 1].get(g[:-1], 1.0) * _backed_off(g[1:], probs, gammas)


def write_arpa(path: str | Path, table: list[dict]) -> None:
    """The ARPA file (tab-separated, as KenLM reads it), written atomically."""
    with atomic_writer(path) as out:
        out.write("\n\\data\\\n")
        for n, rows in enumerate(table, 1):
            out.write(f"ngram {n}={len(rows)}\n")
        for n, rows in enumerate(table, 1):
            out.write(f"\n\\{n}-grams:\n")
            for g in sorted(rows):
                lp, bow = rows[g]
                out.write(f"{lp:.6f}\t{' '.join(g)}" + (f"\t{bow:.6f}" if bow is not None else "") + "\n")
        out.write("\n\\end\\\n")


# ---------------------------------------------------------------- building from manifests or text

def _manifest_sentences(path: Path, phone_set: set[str], info: LmInfo) -> Iterable[list[str]]:
    from kidconsole.manifest import numbered_rows

    for lineno, row in numbered_rows(path):
        phones = row.phones.split() if isinstance(row.phones, str) else []
        bad = sorted(set(phones) - phone_set)
        if not phones or bad:
            info.skipped += 1
            if len(info.skipped_examples) < 10:
                why = f"phones outside the phone set: {' '.join(bad[:5])}" if bad else "no phones"
                info.skipped_examples.append(f"{path}:{lineno}: {why}")
            continue
        yield phones


def _text_sentences(path: Path, phone_set: set[str], info: LmInfo) -> Iterable[list[str]]:
    """Korean text, a sentence a line, through the cached G2P."""
    from kidconsole.g2p import convert_many

    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise KidconsoleError(f"{path}: cannot read the text: {e}") from e
    for k, res in enumerate(convert_many(lines, progress=False), 1):
        phones = (res.phones or "").split()
        if not phones or set(phones) - phone_set:
            info.skipped += 1
            if len(info.skipped_examples) < 10:
                info.skipped_examples.append(f"{path}:{k}: the G2P gave no usable phones")
            continue
        yield phones


def build_phone_lm(sources: Sequence[str | Path], out: str | Path, *, order: int = 3,
                   phones: Sequence[str] | None = None) -> LmInfo:
    """An order-``order`` phone LM of ``sources`` (manifests ``.jsonl``; any other file: Korean text, a
    sentence a line) written to ``out`` (``.arpa``) with its ``.json`` record; rows without phones or
    with phones outside ``phones`` (default: the project's 45 symbols) are skipped and counted."""
    from kidconsole.phonemes import SYMBOLS

    if not 1 <= order <= MAX_ORDER:
        raise KidconsoleError(f"--order {order}: expected 1 to {MAX_ORDER}")
    out = Path(out)
    if out.suffix != ARPA_SUFFIX:
        raise KidconsoleError(f"{out}: the LM file must end in {ARPA_SUFFIX}")
    phones = list(phones or SYMBOLS)
    phone_set = set(phones)
    t0 = time.perf_counter()
    info = LmInfo(arpa=str(out.resolve()), order=order, phones=phones, sources=[])

    def sentences() -> Iterable[list[str]]:
        for src in sources:
            p = Path(src)
            if not p.is_file():
                raise KidconsoleError(f"{p}: no such file (a manifest .jsonl or a text file)")
            info.sources.append(str(p.resolve()))
            read = _manifest_sentences if p.suffix == ".jsonl" else _text_sentences
            for s in read(p, phone_set, info):
                info.sentences += 1
                info.tokens += len(s)
                yield s

    counts = count_ngrams(sentences(), order)
    if not info.sentences:
        raise KidconsoleError(f"no phones to count in {', '.join(map(str, sources))}"
                              + (f"; first problems: {'; '.join(info.skipped_examples[:3])}" if info.skipped else ""))
    table, discounts = estimate(counts, phones)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_arpa(out, table)
    info.ngrams = [len(t) for t in table]
    info.discounts = [round(d, 4) for d in discounts]
    info.seconds = round(time.perf_counter() - t0, 3)
    atomic_write_text(info_path(out), json.dumps(asdict(info), indent=1, ensure_ascii=False) + "\n")
    return info


# ---------------------------------------------------------------- reading back

def arpa_unigrams(path: str | Path) -> list[str]:
    """The unigrams of an ARPA file (its header and first section only, read within a bound); a file
    that is missing or not ARPA is an error naming it."""
    p = Path(path)
    if not p.is_file():
        raise KidconsoleError(f"{p}: no such LM file (build one with `kidconsole lm build`)")
    words, section, read = [], None, 0
    with p.open("rb") as fh:
        for raw in fh:
            read += len(raw)
            if read > MAX_HEADER_BYTES:
                raise KidconsoleError(f"{p}: no end of the unigrams in its first {MAX_HEADER_BYTES >> 20} MiB: "
                                      f"not a phone LM")
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if section is None:
                if line != "\\data\\":
                    raise KidconsoleError(f"{p}: not an ARPA language model (its first line is not \\data\\)")
                section = "data"
            elif line.startswith("\\"):
                if section == "1":
                    break
                section = "1" if line == "\\1-grams:" else line
            elif section == "1":
                parts = line.split("\t") if "\t" in line else line.split()
                if len(parts) < 2:
                    raise KidconsoleError(f"{p}: a unigram line without a word: {line[:60]!r}")
                words.append(parts[1])
    if section != "1" and not words:
        raise KidconsoleError(f"{p}: an ARPA file without unigrams")
    return words


def check_phone_lm(path: str | Path, phones: Iterable[str]) -> list[str]:
    """The LM's phones when they are the model's ``phones`` (its vocabulary's symbols); otherwise an error
    naming the file and the phones that differ (an LM over another phone set would score every phone
    of ours as unknown, or never propose one)."""
    lm = [w for w in arpa_unigrams(path) if w not in SPECIAL]
    model = [p for p in phones if p not in SPECIAL]
    extra = sorted(set(lm) - set(model))
    missing = sorted(set(model) - set(lm))
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"{len(extra)} phones the model lacks ({' '.join(extra[:8])}"
                         f"{' ...' if len(extra) > 8 else ''})")
        if missing:
            parts.append(f"{len(missing)} of the model's phones missing ({' '.join(missing[:8])}"
                         f"{' ...' if len(missing) > 8 else ''})")
        raise KidconsoleError(f"{path}: phone set mismatch between the LM and the model: {'; '.join(parts)}")
    return lm
