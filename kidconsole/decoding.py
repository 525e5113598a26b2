"""How CTC output becomes phones: the decoder options every decoding command shares, and their flags.

``greedy`` (the default): the best phone of each frame, repeats collapsed, blanks dropped. ``beam``: a CTC
beam search (torchaudio's flashlight-based decoder) of width ``beam``, optionally with a phone n-gram LM
(``kidconsole lm build``; KenLM's ARPA format) weighted by ``lm_weight``; it gives the ``nbest`` best
distinct phone sequences with their scores. A phone LM pulls decodes toward the pronunciations it was
counted from, which can hide what a child actually said: see docs/decoding.md before turning it on.

Light: the options and the flags only; trainers/decode.py builds the decoder from them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from kidconsole.errors import KidconsoleError

GREEDY, BEAM = "greedy", "beam"
DECODERS = (GREEDY, BEAM)
DEFAULT_BEAM = 16
DEFAULT_LM_WEIGHT = 0.5


@dataclass(frozen=True)
class DecoderOptions:
    kind: str = GREEDY
    beam: int = DEFAULT_BEAM           # hypotheses kept per frame
    lm: str | None = None              # an ARPA phone LM
    lm_weight: float = DEFAULT_LM_WEIGHT
    nbest: int = 1                     # hypotheses returned per utterance (beam only)

    def __post_init__(self):
        if self.kind not in DECODERS:
            raise KidconsoleError(f"--decoder {self.kind}: expected one of {', '.join(DECODERS)}")
        if self.beam < 1:
            raise KidconsoleError(f"--beam {self.beam}: expected a width of at least 1")
        if self.nbest < 1:
            raise KidconsoleError(f"--nbest {self.nbest}: expected at least 1")
        if not self.lm_weight >= 0:
            raise KidconsoleError(f"--lm-weight {self.lm_weight}: expected a number >= 0")
        if self.kind == GREEDY and (self.lm or self.nbest > 1):
            raise KidconsoleError("--lm and --nbest need --decoder beam (greedy decoding has one answer and no LM)")

    @property
    def with_lm(self) -> bool:
        return self.kind == BEAM and self.lm is not None and self.lm_weight > 0

    def label(self) -> str:
        """A short name for tables and records: ``greedy``, ``beam16``, ``beam16+lm0.5``."""
        if self.kind == GREEDY:
            return GREEDY
        return f"beam{self.beam}" + (f"+lm{self.lm_weight:g}" if self.with_lm else "")


def add_decoder_arguments(parser: argparse.ArgumentParser, nbest: bool = True) -> None:
    """``--decoder greedy|beam``, ``--beam``, ``--lm``, ``--lm-weight`` (and ``--nbest`` where the output can
    carry a list) for every command that decodes (transcribe, serve, score)."""
    g = parser.add_argument_group("decoding")
    g.add_argument("--decoder", choices=DECODERS, default=GREEDY,
                   help="greedy: the best phone per frame (default); beam: CTC beam search, with --lm a phone LM")
    g.add_argument("--beam", type=int, default=DEFAULT_BEAM, metavar="N",
                   help=f"beam width (default {DEFAULT_BEAM})")
    g.add_argument("--lm", metavar="FILE", help="a phone n-gram LM (.arpa, `kidconsole lm build`) for --decoder beam")
    g.add_argument("--lm-weight", type=float, default=DEFAULT_LM_WEIGHT, metavar="W",
                   help=f"the LM's weight against the acoustic log posterior (default {DEFAULT_LM_WEIGHT:g})")
    if nbest:
        g.add_argument("--nbest", type=int, default=1, metavar="N",
                       help="with --decoder beam: the N best distinct decodes and their scores (default 1)")


def options_from_args(args: argparse.Namespace) -> DecoderOptions:
    return DecoderOptions(kind=args.decoder, beam=args.beam, lm=args.lm, lm_weight=args.lm_weight,
                          nbest=getattr(args, "nbest", 1))
