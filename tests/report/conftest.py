import json
import random

import pytest

from kidconsole.phonemes import PHONES


def write_predictions(path, rows):
    """Write prediction dicts (or raw strings, written as they are) one a line."""
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def noisy(rng: random.Random, ref_words: list[list[str]], err: float) -> str:
    """A hypothesis: the reference with random substitutions, deletions and insertions."""
    out = []
    for w in ref_words:
        hw = []
        for p in w:
            x = rng.random()
            if x < err / 3:
                continue
            hw.append(rng.choice(PHONES) if x < 2 * err / 3 else p)
            if rng.random() < err / 3:
                hw.append(rng.choice(PHONES))
        out.append(" ".join(hw))
    return " | ".join(out)


def random_rows(n: int, seed: int = 0, err: float = 0.2, speakers: int = 10, hyp_seed: int | None = None) -> list[dict]:
    """Rows with random references; ``hyp_seed`` draws other hypotheses for the same references."""
    rng = random.Random(seed)
    hyp_rng = rng if hyp_seed is None else random.Random(hyp_seed)
    rows = []
    for i in range(n):
        words = [[rng.choice(PHONES) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(1, 5))]
        spk = i % speakers
        rows.append({"id": f"u{i}", "speaker": f"s{spk}", "age": 4 + spk % 8, "age_range": None,
                     "gender": "MF"[spk % 2], "snr": rng.uniform(0, 40), "duration": rng.uniform(0.5, 10),
                     "split": "test", "ref": " | ".join(" ".join(w) for w in words),
                     "hyp": noisy(hyp_rng, words, err)})
    return rows


@pytest.fixture
def predictions_file(tmp_path):
    return write_predictions(tmp_path / "predictions.jsonl", random_rows(60))


@pytest.fixture
def write_jsonl():
    return write_predictions


@pytest.fixture
def make_rows():
    return random_rows
