"""Beam decoding (torchaudio's flashlight decoder, KenLM for the phone LM) behind the decoder object."""

from __future__ import annotations

import pytest
import torch

from kidconsole.decoding import DecoderOptions
from kidconsole.errors import KidconsoleError
from kidconsole.phone_lm import build_phone_lm, count_ngrams, estimate, write_arpa
from kidconsole.phonemes import SYMBOLS, vocab
from trainers.decode import build_decoder

VOCAB = vocab()
INVERSE = {i: t for t, i in VOCAB.items()}


def peaky_logits(n: int = 6, frames: int = 120, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits shaped like a CTC model's: mostly blank, a phone spiking now and then, some frames unsure."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, frames, len(VOCAB), generator=g)
    logits[:, :, 0] += 4.0
    spikes = torch.rand(n, frames, generator=g) < 0.25
    phones = torch.randint(2, len(VOCAB), (n, frames), generator=g)
    logits.scatter_add_(2, phones[..., None], (spikes * 6.0)[..., None])
    lengths = torch.tensor([frames - 7 * k for k in range(n)])
    return logits, lengths


def lm_file(tmp_path, sents, order=2):
    table, _ = estimate(count_ngrams(sents, order), SYMBOLS)
    write_arpa(tmp_path / "phones.arpa", table)
    return str(tmp_path / "phones.arpa")


def test_beam_of_width_one_without_lm_weight_equals_greedy(tmp_path):
    lm = lm_file(tmp_path, [["A", "N", "I"], ["G", "A", "|", "N", "A"]])
    greedy = build_decoder(None, VOCAB)
    for seed in range(3):
        logits, lengths = peaky_logits(seed=seed)
        want = greedy(logits, lengths)
        for options in (DecoderOptions("beam", beam=1), DecoderOptions("beam", beam=1, lm=lm, lm_weight=0.0)):
            got = build_decoder(options, VOCAB)(logits, lengths)
            assert [d.ids for d in got] == [d.ids for d in want]
            assert [d.confidences for d in got] == [d.confidences for d in want]
    # random, not peaky: every frame a close call
    logits = torch.randn(4, 80, len(VOCAB), generator=torch.Generator().manual_seed(9)) * 3
    lengths = torch.tensor([80, 61, 2, 1])
    assert [d.ids for d in build_decoder(DecoderOptions("beam", beam=1), VOCAB)(logits, lengths)] == \
        [d.ids for d in greedy(logits, lengths)]


def test_nbest_lists_are_sorted_best_first_and_distinct(tmp_path):
    lm = lm_file(tmp_path, [["A", "N", "I"], ["G", "A", "|", "N", "A"]] * 5)
    logits, lengths = peaky_logits(seed=4)
    for options in (DecoderOptions("beam", beam=16, nbest=8), DecoderOptions("beam", beam=16, nbest=8, lm=lm,
                                                                              lm_weight=0.8)):
        for d in build_decoder(options, VOCAB)(logits, lengths):
            scores = [s for _, s in d.nbest]
            assert 1 < len(d.nbest) <= 8
            assert scores == sorted(scores, reverse=True)
            assert len({tuple(ids) for ids, _ in d.nbest}) == len(d.nbest)
            assert d.nbest[0][0] == d.ids and len(d.confidences) == len(d.ids)
            assert [r["phones"] for r in d.nbest_record(INVERSE)][0] == d.phones(INVERSE)


def test_the_lm_pulls_an_unsure_phone_toward_what_it_was_counted_from(tmp_path):
    """Frames unsure between I and E after A N: the acoustics lean to E, the LM (only A N I seen) to I."""
    a, n, i, e = (VOCAB[p] for p in ("A", "N", "I", "E"))
    logits = torch.full((1, 9, len(VOCAB)), -8.0)
    for t, p in enumerate([a, 0, n, 0]):
        logits[0, t, p] = 8.0
    logits[0, 4:8, i], logits[0, 4:8, e] = 1.0, 1.2
    logits[0, 8, 0] = 8.0
    lm = lm_file(tmp_path, [["A", "N", "I"]] * 30, order=3)
    lengths = torch.tensor([9])
    plain = build_decoder(DecoderOptions("beam", beam=8), VOCAB)(logits, lengths)[0]
    pulled = build_decoder(DecoderOptions("beam", beam=8, lm=lm, lm_weight=1.0), VOCAB)(logits, lengths)[0]
    assert plain.phones(INVERSE) == "A N E" and pulled.phones(INVERSE) == "A N I"


def test_a_missing_lm_or_one_over_another_phone_set_is_a_clear_error(tmp_path):
    with pytest.raises(KidconsoleError, match=r"gone\.arpa: no such LM file"):
        build_decoder(DecoderOptions("beam", lm=str(tmp_path / "gone.arpa")), VOCAB)
    table, _ = estimate(count_ngrams([["A", "X1"]], 2), ["A", "X1"])
    write_arpa(tmp_path / "other.arpa", table)
    with pytest.raises(KidconsoleError, match=r"other\.arpa: phone set mismatch .*\(X1\)"):
        build_decoder(DecoderOptions("beam", lm=str(tmp_path / "other.arpa")), VOCAB)
    with pytest.raises(KidconsoleError, match="need --decoder beam"):
        DecoderOptions("greedy", lm=str(tmp_path / "other.arpa"))


def test_an_lm_built_by_the_command_decodes(tmp_path, kidconsole):
    from kidconsole.manifest import Utterance, write_manifest

    write_manifest(tmp_path / "m.jsonl", [Utterance(id=f"u{k}", audio="x.wav", duration=1.0, sample_rate=16000,
                                                    speaker="s", split="train", text="", phones="A N I | G A")
                                          for k in range(5)])
    done = kidconsole("lm", "build", tmp_path / "m.jsonl", "-o", tmp_path / "lm.arpa", "--order", "3")
    assert done.returncode == 0, done.stderr
    assert "order 3" in done.stderr and "from 5 utterances" in done.stderr
    logits, lengths = peaky_logits(n=2)
    out = build_decoder(DecoderOptions("beam", beam=4, lm=str(tmp_path / "lm.arpa")), VOCAB)(logits, lengths)
    assert len(out) == 2
    bad = kidconsole("lm", "build", tmp_path / "missing.jsonl", "-o", tmp_path / "x.arpa")
    assert bad.returncode == 2 and "missing.jsonl: no such file" in bad.stderr
    assert build_phone_lm  # the command and the function are one
