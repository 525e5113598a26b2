"""The training loop: phases, epochs, steps, evaluation, checkpoints, stop and resume.

Each step can be found by its name: ``run`` goes through the phases,
``_run_phase`` through the epochs, ``_train_epoch`` through the batches;
``_optimizer_step``, ``_log``, ``_evaluate``, ``_checkpoint`` and ``_test`` do
one thing each. All progress that a resume needs lives in ``self.state``, a
``LoopState`` (saved as trainer_state.json in every checkpoint); what the
steps since the last ``train`` event add up to in ``self._window``, a ``Window``
(loop_state.py). Bad samples are told in one place (``_warn_bad``).
"""

from __future__ import annotations

import contextlib

import math
import time
from pathlib import Path

import numpy as np
import torch

from kidconsole import rundir
from kidconsole.config import RunConfig
from kidconsole.config.augment import ORDER
from kidconsole.phonemes import vocab
from trainers import checkpoint as ckpt
from trainers.augment import SpecAugment, draw_masks
from trainers.wave_augment import Chain, augment_key, prepare
from trainers.batching import plan_epoch, shard, stable_key
from trainers.data import (BatchStream, fixed_sample, load_rows, make_loader, output_frames, subset, until_stopped,
                           weighted)
from trainers.evaluate import EvalSettings, TorchForward, bucket_pers, eval_loader, evaluate, score_manifest
from trainers.loop_state import LoopState, Window
from trainers.model import backbone, count_parameters, unwrap_base
from trainers.optim import group_lr, make_optimizer


BAD_WINDOW = 1000  # samples (or the phase's epoch, when smaller) over which the bad share is first judged


class BadDataError(RuntimeError):
    """Too many bad samples: the data, not the model, is the problem."""


class NonFiniteError(RuntimeError):
    """The training went non-finite and stayed so: nothing worth keeping was learned."""


def bad_data_verdict(bad: int, seen: int, *, window: int, max_share: float, max_samples: int | None) -> str | None:
    """Why the run must fail for its bad samples, or None. The share is judged over at least ``window``
    samples: before that many are seen, only a count that already exceeds the share of the whole window
    fails (a mostly broken corpus fails at once; one broken file among the first few does not)."""
    if max_samples is not None and bad > max_samples:
        return f"{bad} bad samples, more than data.max_bad_samples ({max_samples})"
    if bad > max_share * max(seen, window):
        return (f"{bad} of {seen} samples were bad, more than data.max_bad_share ({max_share:g}) allows "
                f"(judged over at least {window} samples)")
    return None


# the train event's running totals summed from every process's window (fields of rundir.TrainEvent)
COUNTERS = ["masked_utterances", "speed_perturbed"]
# and each waveform augmentation's, carried together in the event's ``augmented`` (by name)
AUGMENTED = list(ORDER)


class Trainer:
    def __init__(self, cfg: RunConfig, run_dir: str | Path, accelerator, model, processor, new_head: bool,
                 reporter, stop):
        self.cfg, self.run_dir, self.acc = cfg, Path(run_dir), accelerator
        self.processor, self.new_head, self.rep, self.stop = processor, new_head, reporter, stop
        self.d, self.t = cfg.data, cfg.train
        self.phases = cfg.phases
        self.rank, self.world = accelerator.process_index, accelerator.num_processes
        self.vocab = vocab()
        self.inverse_vocab = {i: t for t, i in self.vocab.items()}
        # train.lr_groups: one AdamW group each (a group of LR 0 is frozen here, before the count)
        optimizer, self.group_specs = make_optimizer(model, self.t.lr_groups, self.phases[0].lr, self.t.weight_decay)
        self.group_names = [g.label for g in self.group_specs if g is not None]
        self.trainable, self.total = count_parameters(model)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self.base = unwrap_base(accelerator.unwrap_model(self.model))
        self.forward = TorchForward(self.model, processor.feature_extractor, accelerator)
        self.eval_settings = EvalSettings.from_config(cfg)
        self.spec = SpecAugment(backbone(self.base))
        self.aug = cfg.augment_for(self.phases[0])  # the running phase's augmentation
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        ckpt.install_hooks(accelerator)
        self.ckpt_root = self.run_dir / rundir.CHECKPOINTS
        self.state = LoopState()
        self._rows_cache: dict[str, list] = {}
        self._phase_rows: dict[int, list] = {}
        self._phase_sources: dict[int, list[int]] = {}  # the train manifest of each of a phase's rows
        self._chains: dict[int, list] = {}
        self._unusable: dict[str, list[tuple[str, str]]] = {}  # manifest -> rows skipped at load (id, why)
        # the evaluation manifests are checked now, before any GPU time is spent
        self.valid_rows = fixed_sample(self._rows(self.d.valid_manifest, unique=True), self.d.valid_utterances,
                                       cfg.seed)
        self.test_rows = self._rows(self.d.test_manifest, unique=True) if self.d.test_manifest else []
        self.valid_refs = {r.id: " ".join(r.phones.split()) for r in self.valid_rows}
        self.decode_ids = set(sorted(self.valid_refs, key=lambda i: stable_key(0, i))[:self.t.decodes_per_eval])
        self.t_start = time.time()
        self.wall_before = 0.0  # wall seconds of earlier sessions of this run (resume)
        self._window = Window()
        self._pending_bad: list[tuple[str, str]] = []
        self._bad_window = BAD_WINDOW  # the phase's epoch, when smaller
        self._stops_at_step = 0  # processes that asked to stop, summed at the last optimizer step

    # ---------- data ----------
    def _rows(self, path: str, unique: bool = False) -> list:
        if path not in self._rows_cache:
            self._unusable[path] = []
            self._rows_cache[path] = load_rows(path, bad=self._unusable[path], unique=unique)
        return self._rows_cache[path]

    def _train_manifest(self, pi: int) -> str:
        """The phase's train manifest, or its manifests joined with " + " (where a bad row's message points)."""
        return " + ".join(path for path, _ in self.cfg.train_manifests(self.phases[pi]))

    def phase_rows(self, pi: int) -> list:
        # cached: the stratified draw of a large manifest is not free, and every epoch asks again
        if pi not in self._phase_rows:
            rows, sources = [], []
            for m, (path, weight) in enumerate(self.cfg.train_manifests(self.phases[pi])):
                rows += weighted(subset(self._rows(path), self.phases[pi].fraction, self.cfg.seed), weight,
                                 self.cfg.seed)
                sources += [m] * (len(rows) - len(sources))
            self._phase_rows[pi] = rows
            self._phase_sources[pi] = sources
        return self._phase_rows[pi]

    def chains(self, pi: int) -> list[Chain]:
        """The speed and waveform augmentation of each of the phase's train manifests (their noise files and
        room responses listed or made once here, not in every worker)."""
        if pi not in self._chains:
            augments = self.cfg.manifest_augments(self.phases[pi])
            self._chains[pi] = [Chain(a, self.d.sample_rate, prepare(a.waveform, self.d.sample_rate,
                                                                     augment_key(self.phases[pi], pi, m)))
                                for m, a in enumerate(augments)]
        return self._chains[pi]

    def _report_unusable(self, only: str | None = None) -> None:
        """Rows skipped at load are bad samples, reported once a run: a train manifest's count toward the
        bad-sample budget (at the next log), an evaluation manifest's are warnings only. ``only``: that
        evaluation manifest alone (a run that only tests)."""
        st = self.state
        train = {path for p in self.phases for path, _ in self.cfg.train_manifests(p)} if only is None else set()
        for path, bad in self._unusable.items():
            if not bad or path in st.reported_manifests or only not in (None, path):
                continue
            st.reported_manifests.append(path)
            if path in train:
                if self.acc.is_main_process:  # every process loaded it; one counts it
                    self._count_bad(bad, len(bad))
                continue
            what = "validation" if path == self.d.valid_manifest and only is None else "test"
            self._warn_bad(bad, f"{what}: ")

    def _plan(self, pi: int, epoch: int, durations: list[float]) -> list[list[int]]:
        full = plan_epoch(durations, seed=self.cfg.seed * 1000 + pi, epoch=epoch,
                          batch_seconds=self.d.batch_seconds, max_utts=self.d.max_batch_utterances,
                          bucket=self.d.bucket_utterances)
        return shard(full, self.rank, self.world)

    def phase_steps(self, pi: int) -> int:
        """Optimizer steps of phase ``pi`` if it runs all its epochs (early stopping may cut it)."""
        durations = [r.duration for r in self.phase_rows(pi)]
        accum = self.t.grad_accum
        n = sum(-(-len(self._plan(pi, e, durations)) // accum) for e in range(self.phases[pi].epochs))
        cap = self.phases[pi].max_steps
        return min(n, cap) if cap else n

    def _stream(self, rows, batches, manifest: str, start=0, pi=0, epoch=0) -> BatchStream:
        cfg = self.base.config
        return BatchStream(rows, batches, feature_extractor=self.processor.feature_extractor,
                           kernels=cfg.conv_kernel, strides=cfg.conv_stride, sample_rate=self.d.sample_rate,
                           max_seconds=self.d.max_seconds, start=start, chains=self.chains(pi),
                           sources=self._phase_sources[pi], batch_seconds=self.d.batch_seconds,
                           seed=self.cfg.seed, phase=pi, epoch=epoch, manifest=manifest)

    def _eval_loader(self, rows, manifest: str):
        return eval_loader(rows, self.eval_settings, self.forward, self.rank, self.world, manifest=manifest,
                           should_stop=self._stop_while_waiting())

    def _stop_while_waiting(self):
        """What a loader waiting for a batch asks to give up for a stop: one process alone (with several, the
        stop is decided together at a step's sync, which a waiting process cannot join)."""
        return self._stop_requested_local if self.world == 1 else None

    # ---------- the run ----------
    def resume(self, root: Path) -> Path:
        """Continue from the newest complete checkpoint under ``root`` that loads (a damaged one is named in a
        warning, on stdout and in the events, and the previous one resumes); returns its folder."""
        def warn(message: str) -> None:
            self.acc.print(f"warning: {message}")
            self.rep.emit(rundir.EV_WARNING, what=rundir.CHECKPOINT_DAMAGED, message=message)

        path, state = ckpt.load_resumable(self.acc, root, warn)
        self.state = LoopState.from_dict(state)  # keys newer than the checkpoint: defaults
        self.wall_before = self.state.wall_seconds
        self.rep.status(resumed_from=path.name)
        return path

    def run(self, resumed_from: str | None) -> str:
        """Train through every phase; returns the final state (finished or stopped)."""
        self.phase_totals = [self.phase_steps(i) for i in range(len(self.phases))]
        self.total_steps = sum(self.phase_totals)
        self._report_unusable()
        self.rep.emit(rundir.EV_START, step=self.state.step, resumed_from=resumed_from, world_size=self.world,
                      trainable_params=self.trainable, total_params=self.total, total_steps=self.total_steps)
        self.rep.status(state=rundir.RUNNING, step=self.state.step, total_steps=self.total_steps,
                        phase=self.state.phase + 1)
        self.acc.print(f"trainable parameters: {self.trainable:,} of {self.total:,} "
                       f"({100 * self.trainable / self.total:.2f}%)")
        while self.state.phase < len(self.phases):
            if self._run_phase(self.state.phase) == rundir.STOPPED:
                return rundir.STOPPED
        if not self.state.finished:
            self._check_learned()
            self._finish()
        return rundir.FINISHED

    def _run_phase(self, pi: int) -> str | None:
        p, st = self.phases[pi], self.state
        rows = self.phase_rows(pi)
        self._bad_window = min(BAD_WINDOW, len(rows))
        if not st.phase_started:
            if pi > 0:  # start from the previous phase's best
                ckpt.load_weights(self.acc.unwrap_model(self.model), self.ckpt_root / st.phase_bests[str(pi - 1)])
            self.optimizer.optimizer.state.clear()
            st.update(phase_started=True, best=None, best_checkpoint=None, evals_since_best=0)
            hours = sum(r.duration for r in rows) / 3600
            self.rep.emit(rundir.EV_PHASE, phase=pi + 1, name=p.name, step=st.step, epochs=p.epochs,
                          lr=p.lr, train_utterances=len(rows), train_hours=round(hours, 3),
                          total_steps=self.total_steps)
            self.acc.print(f"phase {pi + 1}/{len(self.phases)} {p.name}: {len(rows)} utterances, "
                           f"{hours:.2f} h, {p.epochs} epochs, lr {p.lr:g}")
        self.rep.status(phase=pi + 1)
        self.aug = self.cfg.augment_for(p)
        durations = [r.duration for r in rows]
        while not st.phase_done and st.epoch < p.epochs:
            result = self._train_epoch(pi, rows, durations)
            if result == rundir.STOPPED:
                return rundir.STOPPED
            if not st.phase_done:
                st.update(epoch=st.epoch + 1, batch=0)
        if st.last_eval_step != st.step:
            if self._evaluate(pi) == rundir.STOPPED:
                return self._stop()
        if st.last_save_step != st.step:  # a resume at the phase's end starts the next phase
            self._checkpoint(pi)
        st.phase_bests[str(pi)] = st.best_checkpoint
        st.update(phase=pi + 1, epoch=0, batch=0, phase_step=0, phase_started=False, phase_done=False)
        return None

    def _train_epoch(self, pi: int, rows, durations) -> str | None:
        st, p, accum = self.state, self.phases[pi], self.t.grad_accum
        mine = self._plan(pi, st.epoch, durations)
        loader = make_loader(self._stream(rows, mine, self._train_manifest(pi), start=st.batch,
                                          pi=pi, epoch=st.epoch),
                             self.d.num_workers, self.acc.device.type == "cuda", wait_bound=self.d.read_timeout,
                             should_stop=self._stop_while_waiting())
        self.model.train()
        t_last = time.perf_counter()
        for batch in self.rep.counting(until_stopped(loader)):
            pos = batch.index + 1  # micro-batches of this epoch done after this one
            boundary = pos % accum == 0 or pos == len(mine)
            self._micro_step(batch, st.step, accum, boundary)
            st.batch = pos
            if not boundary:
                continue
            now = time.perf_counter()
            st.train_seconds += now - t_last
            self._optimizer_step(pi)
            t_last = time.perf_counter()
            if st.step % self.t.log_every == 0:
                self._log(pi)
            cap = p.max_steps
            if st.step % self.t.eval_every == 0 or (cap and st.phase_step >= cap):
                if self._evaluate(pi) == rundir.STOPPED:
                    return self._stop()
                t_last = time.perf_counter()
            if st.step % self.t.save_every == 0 and st.last_save_step != st.step:
                self._checkpoint(pi)
                t_last = time.perf_counter()
            if cap and st.phase_step >= cap:
                st.phase_done = True
            if self._stop_requested():
                return self._stop()
            if st.phase_done:
                break
        if st.batch < len(mine) and not st.phase_done:  # a stop came while a read held the next batch
            st.batch -= st.batch % accum  # micro-batches past the last optimizer step are read again
            return self._stop()
        return None

    # ---------- one step ----------
    def _seed_step(self, step: int, micro: int) -> int:
        # dropout (torch) and SpecAugment (a generator of this seed) draw from it: a resumed run repeats them
        s = stable_key(self.cfg.seed, f"{step}:{micro}:{self.rank}")
        torch.manual_seed(s)
        return s

    def _arm_masks(self, batch, seed: int) -> int:
        """Draws the batch's SpecAugment (per utterance, at the phase's rate) for the coming forward pass;
        returns how many utterances it augments."""
        if self.aug.apply_prob <= 0:
            return 0
        cfg = self.base.config
        frames = [output_frames(int(n), cfg.conv_kernel, cfg.conv_stride) for n in batch.lengths.tolist()]
        padded = output_frames(batch.input_values.shape[1], cfg.conv_kernel, cfg.conv_stride)
        masks = draw_masks(self.aug, frames, padded, cfg.hidden_size, np.random.default_rng([seed, 11]))
        self.spec.arm(masks)
        return masks.utterances

    def _micro_step(self, batch, step: int, accum: int, boundary: bool) -> None:
        w = self._window
        self._count_bad(batch.bad, len(batch) + len(batch.bad))
        if self.t.trace_batches:
            self.rep.trace(self.rank, step + 1, batch.ids)
        if not len(batch):
            if self.world == 1:
                return
            batch = self._dummy_batch()  # every rank must join the gradient all-reduce
            scale = 0.0
        else:
            scale = 1.0
            w.utts += len(batch)
            w.audio += batch.audio_seconds
            w.padded += batch.input_values.numel() / self.d.sample_rate
            w.count("speed_perturbed", batch.speed_perturbed)
            for name, n in batch.augmented.items():
                w.count(name, n)
        seed = self._seed_step(step, batch.index)
        if scale:
            w.count("masked_utterances", self._arm_masks(batch, seed))
        dev = self.acc.device
        ctx = self.acc.no_sync(self.model) if not boundary else contextlib.nullcontext()
        with ctx:
            with self.acc.autocast():
                out = self.model(**batch.inputs(dev, non_blocking=True))
            loss = out.loss.float()
            if scale:
                w.loss += loss.detach()
                w.micro += 1
            self.acc.backward(loss * (scale / accum))

    def _dummy_batch(self):
        from trainers.data import Batch

        n = self.d.sample_rate
        return Batch(index=-1, ids=[], input_values=torch.zeros(1, n), lengths=torch.tensor([n]),
                     labels=torch.full((1, 1), self.vocab["A"], dtype=torch.long))

    def _optimizer_step(self, pi: int) -> None:
        st, w = self.state, self._window
        lrs = [group_lr(spec, self.phases[pi], st.phase_step, self.phase_totals[pi], self.t.schedule)
               for spec in self.group_specs]
        for g, group_rate in zip(self.optimizer.param_groups, lrs):
            g["lr"] = group_rate
        lr = group_lr(None, self.phases[pi], st.phase_step, self.phase_totals[pi], self.t.schedule)
        max_norm = self.t.max_grad_norm or float("inf")
        norm = self.acc.clip_grad_norm_(self.params, max_norm)
        # the one host sync of a step: the gradient norm (to skip a non-finite step) and, with several
        # processes, the summed stop flags ride together in one copy
        norm_value, stops = self._step_sync(norm)
        finite = math.isfinite(norm_value)
        if finite or self.acc.mixed_precision == "fp16":  # the fp16 scaler skips and rescales itself
            self.optimizer.step()
        if not finite:
            w.nonfinite += 1
        st.nonfinite_streak = 0 if finite else st.nonfinite_streak + 1
        self.optimizer.zero_grad(set_to_none=True)
        self._stops_at_step = stops
        st.step += 1
        st.phase_step += 1
        self.rep.step = st.step
        w.lr = lr
        w.group_lrs = [r for spec, r in zip(self.group_specs, lrs) if spec is not None]
        w.steps += 1
        if finite:
            w.norm += norm_value
            w.norms += 1
        limit = self.t.max_nonfinite_steps
        if limit and st.nonfinite_streak >= limit:  # every process has the same (reduced) norm: all stop here
            self._log(pi)
            raise NonFiniteError(f"the last {st.nonfinite_streak} steps all had a non-finite loss or gradient "
                                 f"(train.max_nonfinite_steps {limit}): the training diverged at step "
                                 f"{st.step - st.nonfinite_streak + 1}; see the nonfinite_loss warnings")

    def _step_sync(self, norm) -> tuple[float, int]:
        """(gradient norm, processes asking to stop) with at most one device-to-host copy."""
        if self.world == 1:
            return (float(norm) if norm is not None else 0.0), int(self.stop.requested)
        flag = self.acc.reduce(torch.tensor(float(self.stop.requested), device=self.acc.device), "sum")
        norm = torch.as_tensor(0.0 if norm is None else norm, device=flag.device)  # DeepSpeed: a float
        vals = torch.stack([norm.detach().float().reshape(()), flag.float().reshape(())])
        norm_value, stops = vals.tolist()
        return norm_value, int(stops)

    # ---------- logging ----------
    def _log(self, pi: int) -> None:
        st, w = self.state, self._window
        vals = torch.tensor(w.sums(COUNTERS + AUGMENTED), dtype=torch.float64, device=self.acc.device)
        if self.world > 1:
            vals = self.acc.reduce(vals, "sum")
        summed = vals.tolist()
        tot = Window(**dict(zip(Window.SUMMED, summed)))
        counted = dict(zip(COUNTERS + AUGMENTED, summed[len(Window.SUMMED):]))
        bad = self._gather_bad()
        elapsed = max(1e-9, time.perf_counter() - w.started)
        st.samples += int(tot.utts)
        st.audio_seconds += tot.audio
        st.bad_samples += int(tot.bad)
        st.seen_samples += int(tot.seen)
        for name, n in counted.items():
            st.counters[name] = st.counters.get(name, 0) + int(n)
        self._warn_bad(bad)
        if tot.nonfinite:
            st.nonfinite_losses += int(tot.nonfinite)
            self.rep.emit(rundir.EV_WARNING, step=st.step, what=rundir.NONFINITE_LOSS,
                          message=f"{int(tot.nonfinite)} steps skipped: non-finite loss or gradient",
                          count=st.nonfinite_losses)
        loss = tot.loss / tot.micro if tot.micro else float("nan")
        self.rep.emit(rundir.EV_TRAIN, step=st.step, phase=pi + 1, epoch=st.epoch + 1, loss=round(loss, 5),
                      lr=w.lr, grad_norm=round(tot.norm / tot.norms, 5) if tot.norms else None,
                      samples_per_s=round(tot.utts / elapsed, 2), samples=st.samples,
                      audio_seconds=round(st.audio_seconds, 2),
                      padding=round(1 - tot.audio / tot.padded, 4) if tot.padded else 0.0,
                      total_steps=self.total_steps, lr_groups=self.group_names or None,
                      group_lrs=w.group_lrs if self.group_names else None,
                      **{name: st.counters.get(name, 0) for name in COUNTERS},
                      augmented={n: st.counters[n] for n in AUGMENTED if st.counters.get(n)} or None)
        self.rep.status(step=st.step, total_steps=self.total_steps, phase=pi + 1)
        self._window = Window()
        self._check_bad_share()

    # ---------- bad samples: counted, told, judged ----------
    def _count_bad(self, bad: list[tuple[str, str]], seen: int) -> None:
        """Training samples skipped (id, why) among ``seen`` read: they count toward the bad-sample budget and
        are told, each a warning, at the next log (gathered from every process)."""
        self._pending_bad += bad
        self._window.bad += len(bad)
        self._window.seen += seen

    def _warn_bad(self, bad: list[tuple[str, str]], where: str = "") -> None:
        """Skipped samples (id, why), each a ``bad_sample`` warning carrying the run's count of bad training
        samples so far; ``where``: "validation: " or "test: " for an evaluation's (which the budget does not count)."""
        for uid, why in bad:
            self.rep.emit(rundir.EV_WARNING, step=self.state.step, what=rundir.BAD_SAMPLE, message=f"{where}{why}",
                          count=self.state.bad_samples, id=uid)

    def _gather_bad(self) -> list[tuple[str, str]]:
        mine, self._pending_bad = self._pending_bad, []
        if self.world == 1:
            return mine
        from accelerate.utils import gather_object

        return [b for part in gather_object([mine]) for b in part]

    def _check_bad_share(self) -> None:
        st = self.state
        why = bad_data_verdict(st.bad_samples, st.seen_samples, window=self._bad_window,
                               max_share=self.d.max_bad_share, max_samples=self.d.max_bad_samples)
        if why:
            raise BadDataError(f"{why}; see the bad_sample warnings in events.jsonl")

    # ---------- evaluation and checkpoints ----------
    def _evaluate(self, pi: int) -> str | None:
        st, p = self.state, self.phases[pi]
        if self._window.steps:
            self._log(pi)  # the eval follows the train numbers it judges
        self.rep.status(state=rundir.EVALUATING)
        res = evaluate(self.forward, self.rep.counting(self._eval_loader(self.valid_rows, self.d.valid_manifest)),
                       self.inverse_vocab, self.valid_refs, accelerator=self.acc, should_stop=self._stop_requested_local)
        st.eval_seconds += res.seconds
        self.rep.status(state=rundir.RUNNING)
        if res.aborted:
            return rundir.STOPPED
        st.last_eval_step = st.step
        value = res.metric(p.monitor)
        value = res.per if value is None else value  # CER unavailable: judge by PER
        finite = value is not None and math.isfinite(value)
        # a first value that is not finite is the best only until a finite one comes (nan compares false)
        improved = st.best is None or (finite and (not math.isfinite(st.best)
                                                      or value < st.best - p.min_delta))
        if improved:
            # n == 0: nothing could be scored, so nothing says the model is broken
            st.update(best=value, evals_since_best=0, best_loss_finite=res.n == 0 or math.isfinite(res.loss))
        else:
            st.evals_since_best += 1
        wall = self.wall_before + time.time() - self.t_start
        self.rep.emit(rundir.EV_EVAL, step=st.step, phase=pi + 1, loss=round(res.loss, 5), per=res.per,
                      cer=res.cer, wer=res.wer, n=res.n, eval_seconds=round(res.seconds, 3),
                      eval_share=round(st.eval_seconds / wall, 4) if wall > 0 else 0.0, best=improved,
                      **bucket_pers(self.valid_rows, res))
        self.acc.print(f"step {st.step}: eval loss {res.loss:.4f} PER {res.per:.4f} WER {res.wer:.4f} "
                       f"({res.n} utterances, {res.seconds:.1f} s){' best' if improved else ''}")
        self.rep.decodes([{"t": round(time.time(), 3), "step": st.step, "phase": pi + 1, "id": i, "ref": r,
                           "hyp": h} for i, r, h in zip(res.ids, res.refs, res.hyps) if i in self.decode_ids])
        self._warn_bad(res.bad, "validation: ")
        if improved:  # the best weights must outlive the next checkpoints
            st.best_checkpoint = self._checkpoint(pi, best=True, metric=value)
        p_pat = p.patience
        if p_pat and st.evals_since_best >= p_pat:
            st.phase_done = True
            self.acc.print(f"phase {pi + 1}: no improvement of {p.monitor} in {p_pat} evaluations, stopping early")
        return None

    def _state_for_save(self) -> dict:
        return {**self.state.to_dict(), "wall_seconds": self.wall_before + time.time() - self.t_start}

    def _checkpoint(self, pi: int, best: bool = False, metric: float | None = None) -> str:
        st = self.state
        name = ckpt.checkpoint_name(st.step)
        st.last_save_step = st.step
        saved = dict(self._state_for_save())
        if best:
            saved.update(best_checkpoint=name)
        path = ckpt.save_checkpoint(self.acc, self.ckpt_root, name, saved)
        self.rep.emit(rundir.EV_CHECKPOINT, step=st.step, phase=pi + 1, name=name, path=str(path), best=best,
                      metric=metric)
        if self.acc.is_main_process:
            protect = {v for v in st.phase_bests.values() if v} | {name}
            if best or st.best_checkpoint:
                protect.add(name if best else st.best_checkpoint)
            ckpt.prune(self.ckpt_root, self.t.keep_last, protect)
        return name

    # ---------- stop and finish ----------
    def _stop_requested_local(self) -> bool:
        return self.stop.requested

    def _stop_requested(self) -> bool:
        if self.world == 1:
            return self.stop.requested
        # all processes decide alike: by the flags summed at this step's sync (no extra collective)
        return self._stops_at_step > 0

    def _stop(self) -> str:
        st = self.state
        pi = min(st.phase, len(self.phases) - 1)
        if self._window.steps:
            self._log(pi)
        self._checkpoint(pi, best=False, metric=None)
        self.acc.print(f"stopped at step {st.step} ({self.stop.signal_name or 'request'}); "
                       f"checkpoint saved, resume continues from it")
        return rundir.STOPPED

    def _check_learned(self) -> None:
        st = self.state
        if st.step and st.nonfinite_losses >= st.step:
            raise NonFiniteError(f"every one of the {st.step} steps had a non-finite loss or gradient: nothing "
                                 f"was learned, nothing is exported; see the nonfinite_loss warnings")
        if not st.best_loss_finite:
            raise NonFiniteError(f"the model to export ({st.best_checkpoint}) has a non-finite loss on every "
                                 f"validation utterance ({st.nonfinite_losses} of {st.step} steps were "
                                 f"non-finite): the training diverged, nothing is exported")

    def _finish(self) -> None:
        st = self.state
        last = str(len(self.phases) - 1)
        best = st.phase_bests.get(last)
        if best:
            ckpt.load_weights(self.acc.unwrap_model(self.model), self.ckpt_root / best)
        if self.d.test_manifest:
            self.test()
        if self.acc.is_main_process:
            from trainers.export import export_adapter, export_merged

            model = self.acc.unwrap_model(self.model)
            if hasattr(model, "peft_config"):
                export_adapter(model, self.processor, self.run_dir)
            export_merged(model, self.processor, self.run_dir)
        self.acc.wait_for_everyone()
        st.finished = True

    def test(self) -> None:
        """The final test evaluation: per-utterance predictions with their metadata, and a test event."""
        from trainers.test_decoding import test_decoder

        self._report_unusable(only=self.d.test_manifest)
        vocab = {t: i for i, t in self.inverse_vocab.items()}
        decoder, decoding = test_decoder(self.cfg, self.run_dir, self.forward, vocab,
                                         valid_rows=self.valid_rows, settings=self.eval_settings, accelerator=self.acc,
                                         log=self.acc.print)
        score_manifest(self.forward, self.d.test_manifest, self.eval_settings, self.rep, self.inverse_vocab,
                       rows=self.test_rows, step=self.state.step, accelerator=self.acc, log=self.acc.print,
                       pseudo_speakers=self.pseudo_speakers(), decoder=decoder, decoding=decoding)

    def pseudo_speakers(self) -> set[str]:
        """Speakers of the pseudo-labelled rows of the train manifests (kidconsole pseudo)."""
        return {r.speaker for p in self.phases for path, _ in self.cfg.train_manifests(p)
                for r in self._rows(path) if r.pseudo}
