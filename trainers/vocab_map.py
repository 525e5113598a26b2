"""A checkpoint's CTC vocabulary mapped onto the phone inventory, by symbol.

The checkpoint's tokenizer files say which row of its CTC head (``lm_head``)
means which token: ``vocab.json``, the added tokens (``added_tokens.json``,
``tokenizer_config.json``'s ``added_tokens_decoder``) and the special tokens
(``tokenizer_config.json``, ``special_tokens_map.json``). Our head gets, for
each of our ids, the checkpoint's row of the same symbol:

- its blank is its tokenizer's pad token (else ``<pad>`` / ``[PAD]``, else
  ``config.pad_token_id``) and becomes our blank;
- its word separator may be spelled ``|``, its ``word_delimiter_token``, a
  space, ``<sep>`` or ``▁``; its unknown token ``<unk>`` / ``[UNK]``;
- its other tokens (``<s>``, ``</s>``, anything not ours) are dropped;
- our symbols it lacks get new rows: the mean of its rows for our phones
  (weights and bias), so a new symbol's logit is the mean of the phones' and
  never beats the best of them before it is trained.

Kept rows are copied unchanged: every shared symbol's logit is the checkpoint's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kidconsole.errors import KidconsoleError
from kidconsole.phonemes import PAD, SYMBOLS, UNK, WORD_SEP

PAD_SPELLINGS = ("<pad>", "[PAD]")
UNK_SPELLINGS = ("<unk>", "[UNK]")
SEP_SPELLINGS = ("|", " ", "<sep>", "▁")


@dataclass
class CheckpointVocab:
    """What a checkpoint's tokenizer files say about its head's rows."""
    tokens: dict[str, int]                    # token -> row, added tokens included
    specials: dict[str, str] = field(default_factory=dict)  # pad_token / unk_token / word_delimiter_token
    path: Path | None = None                  # its vocab.json


@dataclass
class HeadMap:
    """Our head, row by row, from the checkpoint's."""
    rows: list[int | None]                   # per our id: the checkpoint's row, None for a new row
    missing: list[str]                       # our symbols the checkpoint lacks (new rows, to be trained)
    dropped: list[str]                       # the checkpoint's tokens that have no row of ours
    spelled: dict[str, str]                  # our token -> the checkpoint's spelling, where they differ

    def is_identity(self, head_size: int) -> bool:
        return head_size == len(self.rows) and self.rows == list(range(len(self.rows)))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KidconsoleError(f"{path}: cannot be read as JSON: {e}") from e


def _content(value) -> str | None:
    # special tokens are saved as a string or as {"content": ..., "lstrip": ...}
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def read_checkpoint_vocab(folder: str | Path) -> CheckpointVocab | None:
    """The checkpoint's token -> row map, None when it has no vocab.json."""
    folder = Path(folder)
    path = folder / "vocab.json"
    if not path.is_file():
        return None
    raw = _read_json(path)
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
                                            for k, v in raw.items()):
        raise KidconsoleError(f"{path}: expected a flat mapping of token -> id (a CTC tokenizer's vocab.json)")
    tokens = dict(raw)
    added = folder / "added_tokens.json"
    if added.is_file():
        tokens.update({k: v for k, v in _read_json(added).items() if isinstance(v, int)})
    specials: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the tokenizer config wins
        cfg_path = folder / name
        if not cfg_path.is_file():
            continue
        cfg = _read_json(cfg_path)
        if not isinstance(cfg, dict):
            continue
        for key in ("pad_token", "unk_token", "word_delimiter_token"):
            tok = _content(cfg.get(key))
            if tok is not None:
                specials[key] = tok
        for idx, tok in (cfg.get("added_tokens_decoder") or {}).items():
            if str(idx).isdigit() and _content(tok) is not None:
                tokens.setdefault(_content(tok), int(idx))
    return CheckpointVocab(tokens=tokens, specials=specials, path=path)


def _find(theirs: CheckpointVocab, special: str, spellings: tuple[str, ...]) -> str | None:
    first = theirs.specials.get(special)
    for tok in ((first,) if first else ()) + spellings:
        if tok in theirs.tokens:
            return tok
    return None


def plan_head(theirs: CheckpointVocab, ours: dict[str, int], head_size: int, pad_token_id: int | None,
              where: str) -> HeadMap:
    """Which of the checkpoint's rows each of our ids takes; ``where`` names the checkpoint in errors."""
    bad = sorted((i, t) for t, i in theirs.tokens.items() if not 0 <= i < head_size)
    if bad:
        i, t = bad[0]
        raise KidconsoleError(f"{where}: {theirs.path} gives {t!r} the id {i}, but the CTC head has "
                              f"{head_size} outputs (ids 0-{head_size - 1}): vocab.json and the weights disagree")
    by_row = {i: t for t, i in theirs.tokens.items()}
    blank = _find(theirs, "pad_token", PAD_SPELLINGS)
    blank_row = theirs.tokens[blank] if blank else None
    if blank_row is None and isinstance(pad_token_id, int) and 0 <= pad_token_id < head_size:
        blank_row, blank = pad_token_id, by_row.get(pad_token_id, f"id {pad_token_id}")
    if blank_row is None:
        raise KidconsoleError(f"{where}: cannot tell the CTC blank: no pad token in tokenizer_config.json or "
                              f"special_tokens_map.json, no <pad> or [PAD] in {theirs.path}, and no pad_token_id "
                              f"in config.json")
    spelled = {PAD: blank} if blank != PAD else {}
    source = {PAD: blank_row}
    unk = _find(theirs, "unk_token", UNK_SPELLINGS)
    if unk is not None:
        source[UNK] = theirs.tokens[unk]
        if unk != UNK:
            spelled[UNK] = unk
    sep = _find(theirs, "word_delimiter_token", SEP_SPELLINGS)
    if sep is not None:
        source[WORD_SEP] = theirs.tokens[sep]
        if sep != WORD_SEP:
            spelled[WORD_SEP] = sep
    for sym in SYMBOLS:
        if sym != WORD_SEP and sym in theirs.tokens:
            source[sym] = theirs.tokens[sym]
    rows = [source.get(tok) for tok, _ in sorted(ours.items(), key=lambda kv: kv[1])]
    used = {r for r in rows if r is not None}
    missing = [s for s in SYMBOLS if s not in source]
    dropped = [by_row.get(i, f"id {i}") for i in range(head_size) if i not in used]
    return HeadMap(rows=rows, missing=missing, dropped=dropped, spelled=spelled)


@torch.no_grad()
def mapped_head(old: torch.nn.Linear, plan: HeadMap, ours: dict[str, int]) -> torch.nn.Linear:
    """A new head of our size: the checkpoint's rows where it has the symbol, the mean of its phone rows
    where it has not."""
    new = torch.nn.Linear(old.in_features, len(plan.rows), bias=old.bias is not None,
                          device=old.weight.device, dtype=old.weight.dtype)
    phone_rows = [r for tok, r in zip(sorted(ours, key=ours.get), plan.rows) if r is not None and tok in SYMBOLS]
    if phone_rows:
        mean_w = old.weight[phone_rows].mean(dim=0)
        mean_b = old.bias[phone_rows].mean() if old.bias is not None else None
    for ours_id, row in enumerate(plan.rows):
        if row is not None:
            new.weight[ours_id] = old.weight[row]
            if new.bias is not None:
                new.bias[ours_id] = old.bias[row]
        elif phone_rows:
            new.weight[ours_id] = mean_w
            if new.bias is not None:
                new.bias[ours_id] = mean_b
        # no phone row at all (a share limit of 1.0): the fresh layer's own random init stays
    return new
