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
