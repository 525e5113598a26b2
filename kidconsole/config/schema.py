"""The run config's schema: every key once, with its type, default, constraint and help.

Unknown keys are errors, types are exact, every number is finite. Validation errors (explain.py),
``--set`` checks (overrides.py) and the key table in docs/training.md (docs.py) all come from these models.
"""

from typing import Annotated, Any, Literal, Optional, Union

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, ValidationInfo, model_validator

from kidconsole.config.kinds import (
    BelowOne, Count, Flag, Layers, Manifest, ModelBase, Modules, Name, NonNegative, OptPosInt, PosInt, Positive,
    Prob, RequiredManifest, Seconds, Share, _choice, _kind, _path, _rule,
)
from kidconsole.config.augment import CHILD_LIKE, Waveform
from kidconsole.config.mirror import REPORT_TO_HELP, MlflowSection, ReportTo
from kidconsole.config.section import Section, _section
from kidconsole.param_groups import parse_pattern, static_overlap


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
    read_timeout: Seconds = Field(120.0, description="seconds the trainer waits for a batch from its DataLoader "
                                  "workers before it ends the run, naming the batch's files (a read blocked on a hung "
                                  "mount); a stop is honoured while it waits. Needs `data.num_workers` >= 1 (a FIFO "
                                  "or device named as audio is refused before any read, whatever the workers)")

    @model_validator(mode="after")
    def _every_utterance_fits_a_batch(self) -> "DataSection":
        if self.batch_seconds < self.max_seconds:
            raise _rule(f"must be at least data.max_seconds ({self.max_seconds:g}) so that every utterance fits "
                        f"a batch", "batch_seconds")
        return self


def _pattern(v: Any) -> Any:
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


def _lm_path(value: str | None, info: ValidationInfo) -> str | None:
    return value if value == "train" else _path(value, info)


class DecodeSection(Section):
    decoder: _choice("greedy", "beam") = Field("greedy", description="how the test evaluation decodes: `greedy` "
                                               "(the best phone per frame) or `beam` (CTC beam search, "
                                               "docs/decoding.md)")
    beam: PosInt = Field(16, description="beam width")
    lm: _kind(Optional[str], "an .arpa path, train, or null", AfterValidator(_lm_path)) = Field(
        None, description="a phone n-gram LM for the beam: an ARPA file, or `train`: built from the run's train "
        "manifests into exports/lm/phones.arpa before the test (null: no LM)")
    lm_order: _kind(int, "an integer from 1 to 8", Ge(1), Le(8)) = Field(3, description="`lm: train`: the n-gram order")
    lm_weight: NonNegative = Field(0.5, description="the LM's weight against the acoustic log posterior")
    tune_lm_weights: _kind(list[Annotated[float, Ge(0)]], "a list of numbers >= 0") = Field(
        [], description="weights tried on the validation sample before the test (never on test); the lowest "
        "validation PER picks the weight (empty: `lm_weight`)")


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
    report_to: ReportTo = Field([], description=REPORT_TO_HELP)
    mlflow: MlflowSection = _section("the MLflow mirror (`report_to: [mlflow]`)")
    decode: DecodeSection = _section("how the test evaluation decodes (greedy, or beam search with a phone LM)")

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

