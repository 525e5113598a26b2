"""Run configs: the schema, ``--set key=value`` overrides, validation, the resolved copy.

Each key is declared once, in the models below: its name, type, default,
constraint (the ``Expect`` text says it in words) and help. Validation errors,
``--set`` checks and the key table in docs/training.md all come from them.
Light (no torch): the launcher validates a config before launch, the trainer
reads the resolved copy the launcher wrote into the run directory. Relative
paths resolve against the folder of the config file; the resolved config holds
absolute paths, so the run directory's copy works from anywhere. Every error
names the file, the dotted key and the reason.
"""

if __name__ == "__main__":  # the module itself does it: config_augment imports it back, which __main__ is not
    import sys

    from kidconsole.config import write_docs

    for doc in sys.argv[1:] or ["docs/training.md"]:
        print(f"{doc}: {'rewritten' if write_docs(doc) else 'current'}")
    raise SystemExit(0)

import copy  # noqa: E402
import difflib
import hashlib
import os
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError, ValidationInfo, model_validator)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from kidconsole.errors import KidconsoleError
from kidconsole.hub import looks_like_hub_id

MAX_CONFIG_BYTES = 1 << 20  # a real config is a few kB; a 50 MB list would parse for minutes


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``5e-4`` as a string; a learning rate written so must be a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _err(where: str, key: str, reason: str) -> KidconsoleError:
    return KidconsoleError(f"{where}: {key}: {reason}")


# ---------- value kinds: a type, its constraint, and what it expects in words ----------

@dataclass(frozen=True)
class Expect:
    """What a valid value is, in the user's words: error reasons and the docs table say it."""
    text: str


def _kind(tp: Any, expect: str, *meta: Any) -> Any:
    return Annotated[(tp, *meta, Expect(expect))]


def _rule(reason: str, key: str = "") -> PydanticCustomError:
    """A failed check of ours; ``key`` names the field below the failing model (dotted)."""
    return PydanticCustomError("kidconsole", "{reason}", {"reason": reason, "key": key})


# YAML 1.1 reads no/off/false (yes/on/true) as booleans: a choice such as mixed_precision "no"
# must accept the word as the docs write it, unquoted
_YAML11_WORDS = {False: ("no", "off", "false"), True: ("yes", "on", "true")}


def _choice(*values: str) -> Any:
    def as_written(v: Any) -> Any:
        if isinstance(v, bool):
            return next((w for w in _YAML11_WORDS[v] if w in values), v)
        return v

    return _kind(Literal[values], "one of " + ", ".join(values), BeforeValidator(as_written))


def _name(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def _layer_spec(spec: Any) -> list[int] | None:
    """``"8-23"``, ``"0-3,6"``, ``8``, ``[8, 9]`` or ``None`` -> sorted layer indices; raises ValueError."""
    if spec is None:
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        return [spec]
    if isinstance(spec, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool) for i in spec):
        return sorted(set(spec))
    if isinstance(spec, str) and re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*", spec):
        out: set[int] = set()
        for part in spec.split(","):
            lo, _, hi = part.partition("-")
            lo_i, hi_i = int(lo), int(hi or lo)
            if hi_i < lo_i:
                raise ValueError(f"range {part.strip()!r} runs backwards")
            out.update(range(lo_i, hi_i + 1))
        return sorted(out)
    raise ValueError(f"expected a layer range like '8-23' or a list of integers, got {_short(spec)}")


def parse_layers(spec: Any, where: str = "", key: str = "") -> list[int] | None:
    """``"8-23"``, ``"0-3,6"``, ``[8, 9]`` or ``None`` -> sorted layer indices (None stays None)."""
    try:
        return _layer_spec(spec)
    except ValueError as e:
        raise _err(where, key, str(e)) from None


def _layers(spec: Any) -> Any:
    try:
        return _layer_spec(spec)
    except ValueError as e:
        raise _rule(str(e)) from None


def _base_dir(info: ValidationInfo) -> Path:
    return Path((info.context or {}).get("base_dir", "."))


def _path(value: str | None, info: ValidationInfo) -> str | None:
    """Absolute, resolved against the config's folder; must exist unless the context says not to check."""
    if value is None:
        return None
    if not value.strip():
        raise _rule("expected a path, got ''")
    p = Path(value).expanduser()
    p = p if p.is_absolute() else _base_dir(info) / p
    if (info.context or {}).get("check_paths", True) and not p.exists():
        raise _rule(f"{p} does not exist")
    return str(p.resolve())


def _model_base(value: str, info: ValidationInfo) -> str:
    """A local folder (made absolute, must exist) unless it looks like a hub id and no such folder is here."""
    if (_base_dir(info) / Path(value).expanduser()).exists() or not looks_like_hub_id(value):
        return _path(value, info)  # type: ignore[return-value]
    return value


PosInt = _kind(int, "a positive integer", Gt(0))
Count = _kind(int, "an integer >= 0", Ge(0))
OptPosInt = _kind(Optional[Annotated[int, Gt(0)]], "a positive integer or null")
Positive = _kind(float, "a positive number", Gt(0))
Seconds = _kind(float, "a positive number of seconds", Gt(0))
NonNegative = _kind(float, "a number >= 0", Ge(0))
Share = _kind(float, "a share between 0 and 1", Ge(0), Le(1))
Prob = _kind(float, "a probability in [0, 1]", Ge(0), Le(1))
BelowOne = _kind(float, "a number in [0, 1)", Ge(0), Lt(1))
Flag = _kind(bool, "true or false")
Name = _kind(Optional[str], "a name or null", BeforeValidator(_name))
Layers = _kind(Optional[list[Annotated[int, Ge(0)]]], "a layer range like '8-23', a list of integers, or null",
               BeforeValidator(_layers))
Manifest = _kind(Optional[str], "a manifest path or null", AfterValidator(_path))
RequiredManifest = _kind(str, "a manifest path", AfterValidator(_path))
ModelBase = _kind(str, "a local model folder or a hub id (owner/name)", AfterValidator(_model_base))
Modules = _kind(list[Annotated[str, MinLen(1)]], "a non-empty list of module names", MinLen(1))


# ---------- the schema ----------

class Section(BaseModel):
    """Unknown keys are errors, types are exact (YAML gives real ints, floats and booleans),
    every number is finite: no key of a run config has a use for inf or nan. A value set in code
    (the launcher's run name) is checked as one read from a file."""
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True,
                              validate_assignment=True)


def _section(help: str) -> Any:
    return Field(default_factory=dict, description=help)  # validated: {} gets the defaults


class ModelSection(Section):
    base: ModelBase = Field(description="the model to adapt; `owner/name` is a hub id unless such a folder "
                            "exists")
    start: _choice("ctc", "encoder") = Field(
        "ctc", description="`ctc`: a CTC checkpoint; its head's rows are mapped onto our inventory by symbol "
        "(below). `encoder`: always a new CTC head sized to the inventory (even when the old one has our size), "
        "trained and saved with the adapter")
    max_missing_share: Share = Field(0.1, description="`ctc`: the largest share of our 45 symbols the checkpoint "
                                     "may lack; each gets a new, trained row; past it the load fails listing them")
    freeze_feature_encoder: Flag = Field(True, description="the CNN feature encoder takes no gradient")
    freeze_layers: Layers = Field(None, description="no adapters and no trainable weights in these transformer "
                                  "layers")
    ctc_zero_infinity: Flag = Field(True, description="impossible alignments give zero loss instead of inf")
    layerdrop: BelowOne = Field(0.0, description="wav2vec2 layer drop")


class LoraSection(Section):
    enabled: Flag = Field(True, description="false: full fine-tuning of every unfrozen weight (makes a tiny base "
                          "model from scratch)")
    r: PosInt = Field(16, description="LoRA rank")
    alpha: Positive = Field(32.0, description="LoRA scaling (the update is scaled by alpha / r)")
    dropout: BelowOne = Field(0.1, description="dropout on the LoRA input")
    target_modules: Modules = Field(["q_proj", "k_proj", "v_proj"], description="modules that get adapters")
    layers: Layers = Field(None, description="layers with adapters; null: every layer not in "
                           "`model.freeze_layers`")


class DataSection(Section):
    train_manifest: Manifest = Field(None, description="training manifest (`docs/manifest.md`); a phase may "
                                     "name its own")
    valid_manifest: RequiredManifest = Field(description="validation manifest")
    test_manifest: Manifest = Field(None, description="test manifest, evaluated at the end (optional)")
    sample_rate: PosInt = Field(16000, description="audio at other rates is resampled (torchaudio)")
    max_seconds: Seconds = Field(20.0, description="longer utterances are skipped as bad samples")
    batch_seconds: Seconds = Field(160.0, description="padded audio seconds per batch and process (utterances x "
                                   "longest); at least `data.max_seconds`")
    max_batch_utterances: PosInt = Field(64, description="cap on utterances per batch")
    bucket_utterances: PosInt = Field(2000, description="utterances sorted together before cutting batches")
    num_workers: Count = Field(4, description="DataLoader workers per process")
    max_bad_share: Share = Field(0.01, description="the run fails once more than this share of training samples "
                                 "was bad, judged over at least 1,000 samples (or the phase's epoch, when smaller): "
                                 "before that many are seen, only a count above the share of the whole window fails, "
                                 "so a mostly broken corpus fails at its first logged step and one broken file among "
                                 "the first few never does")
    max_bad_samples: _kind(Optional[Annotated[int, Ge(0)]], "an integer >= 0 or null") = Field(
        None, description="the run also fails once more than this many bad samples were seen, whatever the share "
        "(null: no cap)")
    valid_utterances: OptPosInt = Field(2000, description="size of the fixed validation sample (null: all)")
    eval_batch_seconds: Seconds = Field(320.0, description="padded seconds per evaluation batch")

    @model_validator(mode="after")
    def _every_utterance_fits_a_batch(self) -> "DataSection":
        if self.batch_seconds < self.max_seconds:
            raise _rule(f"must be at least data.max_seconds ({self.max_seconds:g}) so that every utterance fits "
                        f"a batch", "batch_seconds")
        return self


def _pattern(v: Any) -> Any:
    from kidconsole.param_groups import parse_pattern

    if isinstance(v, str):
        try:
            parse_pattern(v)
        except ValueError as e:
            raise _rule(str(e)) from None
    return v


class LrGroup(Section):
    """One AdamW parameter group: its parameters and its learning rate in every phase."""
    params: _kind(str, "a pattern: terms like 'layers 8-15', 'lora', 'head', 'feature_encoder', 'names GLOB'",
                  AfterValidator(_pattern)) = Field(
        description="which parameters: every term must match (`lora layers 16-23`: the adapters of layers 16-23)")
    name: Name = Field(None, description="shown in the `train` events and the LR chart; null: the pattern")
    lr: _kind(Optional[Annotated[float, Ge(0)]], "a number >= 0 or null") = Field(
        None, description="the group's peak LR in every phase (0: frozen); give `lr` or `scale`")
    scale: _kind(Optional[Annotated[float, Ge(0)]], "a number >= 0 or null") = Field(
        None, description="the group's peak LR as a multiple of the phase's `lr` (0: frozen)")
    warmup: _kind(Optional[Annotated[int, Ge(0)]], "an integer >= 0 or null") = Field(
        None, description="the group's warmup steps (null: the phase's); it decays as the phase's does")

    @model_validator(mode="after")
    def _one_rate(self) -> "LrGroup":
        if (self.lr is None) == (self.scale is None):
            raise _rule("give the group's rate one way: lr (absolute) or scale (of the phase's lr)", "lr")
        return self

    @property
    def label(self) -> str:
        return self.name or self.params

    @property
    def frozen(self) -> bool:
        return (self.lr if self.lr is not None else self.scale) == 0


class TrainSection(Section):
    mixed_precision: _choice("no", "bf16", "fp16") = Field(
        "no", description="`bf16` / `fp16` autocast; the CTC loss is computed in fp32")
    grad_accum: PosInt = Field(1, description="micro-batches per optimizer step")
    weight_decay: NonNegative = Field(0.0, description="AdamW weight decay")
    max_grad_norm: NonNegative = Field(1.0, description="gradient clipping (0: none)")
    schedule: _choice("linear", "cosine", "constant") = Field("linear", description="LR decay after warmup")
    log_every: PosInt = Field(10, description="steps between `train` events")
    eval_every: PosInt = Field(500, description="steps between evaluations (also one at each phase end); one that "
                               "improves the phase's best writes a checkpoint")
    save_every: PosInt = Field(2000, description="steps between checkpoints, whatever the evaluations (also one at "
                               "each phase end)")
    keep_last: PosInt = Field(2, description="the newest checkpoints kept; each phase's best is kept besides them")
    decodes_per_eval: Count = Field(5, description="sample decodes written per evaluation")
    heartbeat_seconds: Seconds = Field(15.0, description="heartbeat period")
    stop_timeout: Seconds = Field(120.0, description="seconds from a stop signal to a forced exit")
    trace_batches: Flag = Field(False, description="write `trace.rank<N>.jsonl` (utterance ids per step)")
    max_nonfinite_steps: OptPosInt = Field(100, description="the run fails after this many consecutive steps "
                                           "with a non-finite loss or gradient (null: never)")
    lr_groups: _kind(list[LrGroup], "a list of parameter groups") = Field(
        [], description="discriminative learning rates: AdamW parameter groups, each with its own LR (or multiple "
        "of the phase's), warmup and decay; a parameter no group claims follows the phase's `lr`; no parameter may "
        "be claimed by two groups (see Discriminative learning rates)")

    @model_validator(mode="after")
    def _groups_apart(self) -> "TrainSection":
        from kidconsole.param_groups import parse_pattern, static_overlap

        names = [g.label for g in self.lr_groups]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise _rule(f"group name {twice[0]!r} is used twice", "lr_groups")
        both = static_overlap([parse_pattern(g.params) for g in self.lr_groups])
        if both:
            i, j = both
            raise _rule(f"groups {i} ({self.lr_groups[i].params!r}) and {j} ({self.lr_groups[j].params!r}) claim "
                        f"the same parameters: a parameter may be in one group only", "lr_groups")
        return self


from kidconsole.config_augment import CHILD_LIKE, Waveform  # noqa: E402  (it builds on Section and the kinds above)


class Augment(Section):
    """The reference recipe's words: SpecAugment "applied to 50% of the utterances" is ``apply_prob: 0.5``,
    "2 time masks of width 0-30" ``time_masks: 2, time_mask_width: 30``; speed perturbation "0.9 / 1.0 / 1.1,
    p = 0.5" ``speed_prob: 0.5``."""
    apply_prob: Prob = Field(description="share of utterances that get SpecAugment (drawn per utterance); each "
                             "gets exactly the masks below")
    time_masks: Count = Field(2, description="time masks per augmented utterance; a masked frame takes the model's "
                              "trained mask embedding")
    time_mask_width: Count = Field(30, description="a time mask's width in encoder frames, drawn from 0 to this "
                                   "(at most the utterance's frames)")
    feature_masks: Count = Field(2, description="feature masks per augmented utterance; a masked channel is zero "
                                 "in every frame")
    feature_mask_width: Count = Field(15, description="a feature mask's width in channels, drawn from 0 to this "
                                      "(at most a quarter of the model's hidden size)")
    speed_prob: Prob = Field(description="share of utterances given a speed drawn from 0.9, 1.0, 1.1 (torchaudio); a "
                             "third of them draw 1.0 and keep theirs")
    waveform: Waveform = Field(default_factory=dict, description="waveform augmentations in the data workers "
                               "(see Waveform augmentation)")


# the reference's phases: weak (phase 1) masks half the utterances, strong (phase 2) all, medium (phase 3)
# three quarters; speed perturbation only in phases 2 and 3
_MASKS = {"time_masks": 2, "time_mask_width": 30, "feature_masks": 2, "feature_mask_width": 15}
PRESETS: dict[str, dict[str, Any]] = {
    "none": {"apply_prob": 0.0, **_MASKS, "speed_prob": 0.0},
    "weak": {"apply_prob": 0.5, **_MASKS, "speed_prob": 0.0},
    "medium": {"apply_prob": 0.75, **_MASKS, "speed_prob": 0.5},
    "strong": {"apply_prob": 1.0, **_MASKS, "speed_prob": 0.5},
    # adult voices toward children's, for an adult manifest of a phase (phases[].manifests[].augment)
    "child_like": {"apply_prob": 0.0, **_MASKS, "speed_prob": 0.0, "waveform": CHILD_LIKE},
}


def _over_presets(v: Any) -> Any:
    """The built-in presets, with the config's own presets added or laid over them key by key."""
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {k: dict(s) for k, s in PRESETS.items()}
    for name, s in v.items():
        out[name] = {**PRESETS[name], **s} if name in PRESETS and isinstance(s, dict) else s
    return out


def _augment_tag(v: Any) -> str | None:
    return "preset" if isinstance(v, str) else "inline" if isinstance(v, (dict, Augment)) else None


Presets = _kind(dict[str, Augment], "a mapping of preset name -> augmentation settings",
                BeforeValidator(_over_presets))
AugmentChoice = _kind(Union[Annotated[str, Tag("preset")], Annotated[Augment, Tag("inline")]],
                      "a preset name from augmentations or a mapping of augmentation settings",
                      Discriminator(_augment_tag))


class PhaseManifest(Section):
    path: RequiredManifest = Field(description="a train manifest (labelled, or pseudo-labelled by `kidconsole "
                                   "pseudo`)")
    weight: Positive = Field(1.0, description="times each of its utterances is seen per epoch: 2 twice, 0.5 a "
                             "fixed half of them (nested, as `fraction`)")
    augment: _kind(Optional[AugmentChoice], "null, a preset name or a mapping of augmentation settings") = Field(
        None, description="its utterances' speed and waveform augmentation instead of the phase's (`child_like`: "
        "adult voices toward children's); SpecAugment stays the phase's")


class Phase(Section):
    name: Name = Field(None, description="shown in events and on the console; null: `phase<i+1>`")
    fraction: _kind(float, "a share in (0, 1]", Gt(0), Le(1)) = Field(
        1.0, description="share of the train manifest's hours, drawn as `kidconsole subset build` draws its "
        "`train_phaseN.jsonl`: stratified by age x SNR x duration, nested (20% lies inside 60%)")
    manifest: Manifest = Field(None, description="the phase's own train manifest instead of `data.train_manifest`")
    manifests: _kind(Optional[list[PhaseManifest]], "a non-empty list of {path, weight} or null", MinLen(1)) = Field(
        None, description="several train manifests mixed by weight instead (`fraction` applies to each; not with "
        "`manifest`)")
    epochs: PosInt = Field(1, description="epochs over the phase's utterances")
    max_steps: OptPosInt = Field(None, description="optional cap on the phase's optimizer steps")
    lr: Positive = Field(1e-4, description="peak LR; decays to 0 at the phase's last step")
    warmup: Count = Field(0, description="warmup optimizer steps")
    augment: AugmentChoice = Field("none", description="the phase's augmentation: a preset (below) or its own "
                                   "settings")
    patience: OptPosInt = Field(None, description="evaluations without an improvement of more than `min_delta` "
                                "before the phase stops early (null: never)")
    min_delta: NonNegative = Field(0.0, description="the improvement that counts for early stopping")
    monitor: _choice("per", "cer", "wer", "loss") = Field("per", description="the metric early stopping and the "
                                                           "best checkpoint follow")


class LineageSection(Section):
    kind: _kind(Optional[Literal["average", "ensemble"]], "average, ensemble or null") = Field(
        None, description="set by `kidconsole run average` / `run ensemble` on the run they write: this run was "
        "made from other runs' weights, not trained (null: a trained run)")
    sources: _kind(list[str], "a list of paths") = Field(
        [], description="the checkpoint folders averaged, or the run directories / checkpoint folders ensembled")
    method: Name = Field(None, description="how: which checkpoints were chosen and how LoRA was averaged, or how "
                         "posteriors were combined")


class RunConfig(Section):
    name: Name = Field(None, description="run name (the launcher's `--name` wins; made unique with the time)")
    seed: _kind(int, "an integer from 0 to 4294967295", Ge(0), Lt(2 ** 32)) = Field(
        1234, description="data order, subsets, validation sample, augmentation, dropout")
    model: ModelSection = _section("the base model")
    lora: LoraSection = _section("the adapters")
    data: DataSection = _section("manifests and batching")
    train: TrainSection = _section("the optimizer, logging, evaluation and checkpoints")
    augmentations: Presets = Field(default_factory=dict, description="named augmentation presets (built in: "
                                   "none, weak, medium, strong; a preset given here is laid over them)")
    phases: _kind(list[Phase], "a non-empty list of phases", MinLen(1)) = Field(
        description="the curriculum: phases run in order, each from the previous phase's best weights")
    lineage: LineageSection = _section("where a run made without training (an average, an ensemble) comes from")

    @model_validator(mode="after")
    def _across_sections(self) -> "RunConfig":
        if self.lora.layers is not None and self.model.freeze_layers:
            both = sorted(set(self.lora.layers) & set(self.model.freeze_layers))
            if both:
                raise _rule(f"layers {both} are also in model.freeze_layers", "lora.layers")
        for i, p in enumerate(self.phases):
            p.name = p.name or f"phase{i + 1}"
            if p.manifest is not None and p.manifests is not None:
                raise _rule("set manifest or manifests, not both", f"phases.{i}.manifests")
            if p.manifest is None and p.manifests is None and self.data.train_manifest is None:
                raise _rule("no train manifest: set data.train_manifest or this phase's manifest",
                            f"phases.{i}.manifest")
            named = [(f"phases.{i}.augment", p.augment)] + [(f"phases.{i}.manifests.{j}.augment", m.augment)
                                                            for j, m in enumerate(p.manifests or [])]
            for key, choice in named:
                if isinstance(choice, str) and choice not in self.augmentations:
                    raise _rule(f"unknown augmentation {choice!r} (known: {', '.join(self.augmentations)})", key)
        return self

    def augment_for(self, phase: Phase) -> Augment:
        """A phase's augmentation settings (a named preset or inline)."""
        return self._augment(phase.augment)

    def _augment(self, choice: str | Augment) -> Augment:
        return self.augmentations[choice] if isinstance(choice, str) else choice

    def manifest_augments(self, phase: Phase) -> list[Augment]:
        """The augmentation of each of ``train_manifests(phase)``: a manifest's own, else the phase's."""
        own = [m.augment for m in phase.manifests] if phase.manifests is not None else [None]
        return [self._augment(a if a is not None else phase.augment) for a in own]

    def train_manifests(self, phase: Phase) -> list[tuple[str, float]]:
        """A phase's train manifests with their weights: its ``manifests``, else its ``manifest`` or
        ``data.train_manifest`` at weight 1."""
        if phase.manifests is not None:
            return [(m.path, m.weight) for m in phase.manifests]
        return [(phase.manifest or self.data.train_manifest, 1.0)]


# ---------- walking the schema: dotted keys, fields, nearest keys ----------

def _shape(ann: Any) -> tuple[str, Any]:
    """("model", cls) | ("list", item) | ("dict", value) | ("union", members) | ("leaf", ann)."""
    while typing.get_origin(ann) is Annotated:
        ann = typing.get_args(ann)[0]
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        return _shape(members[0]) if len(members) == 1 else ("union", members)
    if origin is list:
        return "list", typing.get_args(ann)[0]
    if origin is dict:
        return "dict", typing.get_args(ann)[1]
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    return "leaf", ann


def _tag(ann: Any) -> str | None:
    return next((m.tag for m in typing.get_args(ann)[1:] if isinstance(m, Tag)), None) \
        if typing.get_origin(ann) is Annotated else None


def _walk(loc: Sequence[Any]) -> tuple[list[str], FieldInfo | None, type[BaseModel] | None, Any]:
    """An error location -> (dotted key parts without union tags, the field there, the model holding it,
    the type at the location: the field's, or an item's of a list or mapping)."""
    ann: Any = RunConfig
    parts: list[str] = []
    field: FieldInfo | None = None
    holder: type[BaseModel] | None = None
    for part in loc:
        shape, arg = _shape(ann)
        if shape == "union":
            member = next((m for m in arg if _tag(m) == part), None)
            if member is not None:
                ann = member
                continue
        parts.append(str(part))
        if shape == "model":
            holder, field = arg, arg.model_fields.get(part)
            ann = field.annotation if field is not None else None
        elif shape in ("list", "dict"):
            ann = arg
        else:
            ann = None
    return parts, field, holder, ann


def _expect(field: FieldInfo | None) -> str:
    for m in (field.metadata if field is not None else ()):
        if isinstance(m, Expect):
            return m.text
    return "a mapping" if field is not None and _shape(field.annotation)[0] == "model" else "a valid value"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of ``model``, a phase's as ``phases.<i>.KEY``, a preset's as ``augmentations.<name>.KEY``."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.append(key)
        shape, arg = _shape(field.annotation)
        if shape == "model":
            out += _leaf_keys(arg, key + ".")
        elif shape in ("list", "dict") and _shape(arg)[0] == "model":
            out += _leaf_keys(_shape(arg)[1], f"{key}.{'<i>' if shape == 'list' else '<name>'}.")
    return out


def _unknown(parts: list[str], holder: type[BaseModel]) -> str:
    """'unknown key' with the nearest valid keys: of its own section, then of the whole schema."""
    key, prefix = ".".join(parts), ".".join(parts[:-1])
    here = [f"{prefix}.{k}" if prefix else k for k in holder.model_fields]
    which = parts[1] if len(parts) > 2 else None  # the phase index or preset name the key is under
    everywhere = [k.replace("<i>", which if parts[0] == "phases" and which else "0")
                  .replace("<name>", which if parts[0] == "augmentations" and which else "none")
                  for k in _leaf_keys(RunConfig)]
    near = difflib.get_close_matches(key, here, n=3, cutoff=0.6)
    near += [k for k in difflib.get_close_matches(key, everywhere, n=3, cutoff=0.75) if k not in near]
    known = ", ".join(holder.model_fields)
    if near:
        return f"unknown key; nearest: {', '.join(near[:3])} (known here: {known})"
    return f"unknown key (known here: {known})"


def _reason(err: dict) -> tuple[str, str]:
    """One pydantic error -> (dotted key, reason in the user's words)."""
    parts, field, holder, at = _walk(err["loc"])
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "kidconsole":
        return ".".join(parts + ([ctx["key"]] if ctx.get("key") else [])), ctx["reason"]
    key = ".".join(parts)
    if kind == "missing":
        return key, f"required: {_expect(field)}"
    if kind in ("extra_forbidden", "invalid_key") and holder is not None:
        return key, _unknown(parts, holder)
    got = _short(err.get("input"))
    if _shape(at)[0] == "model":  # a section, a phase, a preset
        return key, f"expected a mapping, got {got}"
    if kind == "finite_number":
        return key, f"{got} is not a finite number (expected {_expect(field)})"
    if kind == "literal_error" and isinstance(err.get("input"), bool):
        got += " (YAML reads an unquoted yes/no/on/off as a boolean)"
    return key, f"expected {_expect(field)}, got {got}"


def _explained(e: ValidationError, where: str) -> KidconsoleError:
    lines: dict[str, str] = {}
    for err in e.errors(include_url=False):
        key, reason = _reason(err)
        lines.setdefault(key, f"{where}: {key}: {reason}")
    shown = list(lines.values())
    more = f"\n(and {len(shown) - 10} more)" if len(shown) > 10 else ""
    return KidconsoleError("\n".join(shown[:10]) + more)


# ---------- --set key=value ----------

def _set_dotted(raw: dict, assignment: str, where: str) -> None:
    """Apply one override to the raw mapping, checking each step of the key against the schema."""
    key, sep, value = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise KidconsoleError(f"{where}: override {assignment!r} is not key=value")
    try:
        parsed = _yaml(value) if value.strip() else None
    except yaml.YAMLError as e:
        raise _err(where, key, f"cannot parse value {value!r}: {e}") from e
    parts = key.split(".")
    node: Any = raw
    ann: Any = RunConfig
    field: FieldInfo | None = None
    for i, part in enumerate(parts):
        above, here = ".".join(parts[:i]), ".".join(parts[: i + 1])
        shape, arg = _shape(ann)
        if shape == "union":  # a choice of a name or a mapping (a phase's augment): keys mean the mapping
            shape, arg = next(((s, a) for s, a in map(_shape, arg) if s == "model"), ("leaf", ann))
        if shape == "leaf":
            raise _err(where, here, f"{above} is a single value ({_expect(field)}); it has no key {part!r}")
        if shape == "list":
            if not isinstance(node, list):
                raise _err(where, here, f"{above} is not a list in this config: set it whole ({above}=[...])")
            if not part.isdigit() or int(part) >= len(node):
                raise _err(where, here, f"{part!r} is not an index of {above} (a list of {len(node)})")
            slot: Any = int(part)
        else:
            if not isinstance(node, dict):
                raise _err(where, here, f"{above} is {_short(node)}, not a mapping")
            if shape == "model" and part not in arg.model_fields:
                raise _err(where, here, _unknown(parts[: i + 1], arg))
            slot = part
        if shape == "model":
            field = arg.model_fields[part]
            ann = field.annotation
        else:
            ann = arg
        if i == len(parts) - 1:
            node[slot] = parsed
        else:
            nxt = node[slot] if isinstance(node, list) else node.get(slot)
            if nxt is None:
                nxt = node[slot] = {}
            node = nxt


# ---------- reading, resolving, writing ----------

def read_yaml(path: str | Path) -> Any:
    """A config file parsed (``5e-4`` a float), refused unreadable, over MAX_CONFIG_BYTES or not YAML."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size  # checked before reading: parsing 50 MB takes minutes
            data = f.read(MAX_CONFIG_BYTES + 1) if size <= MAX_CONFIG_BYTES else b""
        size = max(size, len(data))
    except OSError as e:
        raise KidconsoleError(f"cannot read config {path}: {e.strerror}") from e
    if size > MAX_CONFIG_BYTES:
        raise KidconsoleError(f"{path}: {size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte (1 MiB) limit of a "
                              f"config file")
    try:
        return _yaml(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise KidconsoleError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise KidconsoleError(f"{path}: not valid YAML: {e}") from e


def resolve_config(raw: Any, where: str = "<config>", base_dir: str | Path = ".",
                   overrides: Sequence[str] = (), check_paths: bool = True) -> RunConfig:
    """Defaults filled, overrides applied, validated; paths made absolute against ``base_dir``
    (and required to exist unless ``check_paths`` is false)."""
    if not isinstance(raw, dict):
        raise KidconsoleError(f"{where}: a run config must be a YAML mapping")
    raw = copy.deepcopy(raw)
    for assignment in overrides:
        _set_dotted(raw, assignment, f"{where} (--set {assignment})")
    context = {"base_dir": Path(base_dir).resolve(), "check_paths": check_paths}
    try:
        return RunConfig.model_validate(raw, context=context)
    except ValidationError as e:
        raise _explained(e, where) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read, resolve and validate a run config; relative paths resolve against its folder."""
    path = Path(path)
    return resolve_config(read_yaml(path) or {}, str(path), path.parent, overrides)


def read_run_config(run_dir: str | Path) -> RunConfig | None:
    """A run directory's resolved config, for readers that must never fail (the console, reports).

    None when config.yaml is absent, unreadable, over the size limit, not YAML, or not valid under
    this schema (a broken file, or one written by an incompatible version). Paths are read as written,
    not checked: a finished run's manifests may have moved since."""
    from kidconsole import rundir

    path = Path(run_dir) / rundir.CONFIG
    try:
        return resolve_config(read_yaml(path), str(path), path.parent, check_paths=False)
    except (KidconsoleError, ValueError, RecursionError):
        return None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(), sort_keys=False, allow_unicode=True)


def config_hash(cfg: RunConfig) -> str:
    return hashlib.sha256(dump_config(cfg).encode("utf-8")).hexdigest()


# ---------- the key table of docs/training.md ----------

DOCS_BEGIN = "<!-- config keys: generated from kidconsole/config.py by `python -m kidconsole.config docs/training.md` -->"
DOCS_END = "<!-- end of config keys -->"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value  # as a config writes it: mixed_precision no, not 'no'
    return yaml.safe_dump(value, default_flow_style=True, width=10 ** 6).strip().removesuffix("...").strip()


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        shape, arg = _shape(field.annotation)
        inner = _shape(arg)[1] if shape in ("list", "dict") and _shape(arg)[0] == "model" else None
        if shape == "model":
            out += _rows(arg, key + ".")
            continue
        if field.is_required():
            default = "required"
        elif model is RunConfig and name == "augmentations":
            default = ", ".join(f"`{p}`" for p in PRESETS)
        else:
            default = f"`{_show(field.get_default(call_default_factory=True))}`"
        out.append(f"| `{key}` | {default} | {_expect(field)} | {field.description or ''} |")
        if inner is not None:
            out += _rows(inner, f"{key}.{'<i>' if shape == 'list' else '<name>'}.")
    return out


def docs_tables() -> str:
    """The config key table and the augmentation presets, as docs/training.md holds them."""
    keys = [k for k, f in Augment.model_fields.items() if _shape(f.annotation)[0] != "model"]
    lines = [DOCS_BEGIN, "| key | default | accepts | meaning |", "|---|---|---|---|", *_rows(RunConfig), "",
             "| preset | " + " | ".join(f"`{k}`" for k in keys) + " | `waveform` |", "|---" * (len(keys) + 2) + "|",
             *(f"| `{name}` | " + " | ".join(_show(p[k]) for k in keys) + f" | {_show(p['waveform']) if p.get('waveform') else '-'} |"
               for name, p in PRESETS.items()),
             DOCS_END]
    return "\n".join(lines)


def write_docs(path: str | Path) -> bool:
    """Rewrite the generated tables in ``path`` (between the markers); True when the file changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start, end = text.index(DOCS_BEGIN), text.index(DOCS_END) + len(DOCS_END)
    new = text[:start] + docs_tables() + text[end:]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text

