"""Greedy CTC decoding: best id per frame, repeats collapsed, blanks dropped."""

from __future__ import annotations

import torch


def greedy_ids(logits: torch.Tensor, frame_lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Per utterance, the decoded ids (``logits``: batch x frames x vocab)."""
    best = logits.argmax(dim=-1).cpu()
    out = []
    for row, n in zip(best, frame_lengths.tolist()):
        seq = torch.unique_consecutive(row[:n]).tolist()
        out.append([i for i in seq if i != blank])
    return out


def ids_to_phones(ids: list[int], inverse_vocab: dict[int, str]) -> str:
    """Ids to a manifest-style phone string (space-separated, ``|`` between words)."""
    return " ".join(inverse_vocab.get(i, "<unk>") for i in ids)


def greedy_with_confidence(logits: torch.Tensor, frame_lengths: torch.Tensor,
                           blank: int = 0) -> list[list[tuple[int, float]]]:
    """Per utterance, each decoded id with its confidence: the CTC posterior of that id, averaged over the
    frames of its run (a phone held for three frames has three posteriors)."""
    probs = logits.detach().float().softmax(dim=-1).cpu()
    best_p, best = probs.max(dim=-1)
    out = []
    for row, p, n in zip(best, best_p, frame_lengths.tolist()):
        ids, counts = torch.unique_consecutive(row[:n], return_counts=True)
        ends = counts.cumsum(0)
        sums = torch.cat([torch.zeros(1), p[:n].double().cumsum(0)])
        means = (sums[ends] - sums[ends - counts]) / counts
        out.append([(i, round(float(c), 4)) for i, c in zip(ids.tolist(), means.tolist()) if i != blank])
    return out
