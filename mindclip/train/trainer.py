"""The training loop: builds model, objective, data and step from a RunConfig, then runs.

One path for every method, device and world size. Rank 0 alone writes logs and checkpoints.
"""
import os
import shutil
import sys
import time

import mindspore as ms
import numpy as np

from mindclip.config import dump_yaml
from mindclip.data.columns import caption_tokens_index
from mindclip.data.pipeline import create_dataset
from mindclip.train import checkpoint as ckpt
from mindclip.train.build import build_train_step, resolved_loss_scale
from mindclip.train.errors import RunError
from mindclip.train.logger import TrainLogger
from mindclip.train.networks import build_objective
from mindclip.train.preflight import check_run
from mindclip.train.resume import plan_resume, settle_output_dir
from mindclip.train.run_dir import check_run_dir, claim_run_dir
from mindclip.train.schedule import warmup_cosine_lr
from mindclip.train.skip_guard import SkipGuard



def launched_by_msrun():
    """msrun (and mpirun-style launchers) export the worker count to every process."""
    return int(os.environ.get("MS_WORKER_NUM", "1")) > 1 or "RANK_SIZE" in os.environ


def setup_runtime(train_cfg):
    """Set mode and device; initialise communication when launched on several ranks."""
    mode = ms.GRAPH_MODE if train_cfg.mode == "graph" else ms.PYNATIVE_MODE
    ms.set_context(mode=mode, device_target=train_cfg.device_target)
    if not launched_by_msrun():
        return 0, 1
    from mindspore.communication import get_group_size, get_rank, init

    init()
    world = get_group_size()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=world)
    return get_rank(), world


class Trainer:
    """`Trainer(cfg, resume=None).run() -> summary dict`. `resume`: a checkpoint path or "auto".

    overwrite: delete an earlier run's files in the output directory (else such a directory is
    refused unless resumed). resume_allow: config keys that may differ from the resumed run's.
    Bad input raises RunError / ConfigError / CheckpointError before anything is built; a run that
    keeps skipping steps raises RunFailed. `close()` releases the output directory's lock.
    """

    def __init__(self, cfg, resume=None, stream=None, overwrite=False, resume_allow=()):
        self.cfg = cfg
        self.stream = stream or sys.stdout
        self.run_lock = None
        self.resume_plan = self._check_start(resume, overwrite, resume_allow)  # reads only, on every rank
        self.rank, self.world = setup_runtime(cfg.train)
        self.is_main = self.rank == 0
        ms.set_seed(cfg.train.seed)
        np.random.seed(cfg.train.seed)
        self.clip, self.objective = build_objective(cfg)
        self.net = self.objective.model
        self.data_cfg = cfg.data
        self.batches_per_epoch = self._epoch_dataset(0, 0).get_dataset_size()
        self.accum = cfg.optim.accumulation_steps
        steps_per_epoch = self.batches_per_epoch // self.accum
        if steps_per_epoch < 1:
            raise RunError(f"data: {self.batches_per_epoch} batches per epoch per rank is fewer than "
                           f"optim.accumulation_steps={self.accum}; add data or lower the batch size")
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = cfg.train.max_steps or cfg.train.epochs * steps_per_epoch
        warmup = int(round(cfg.optim.warmup_fraction * self.total_steps))
        self.lr = warmup_cosine_lr(cfg.optim.lr, self.total_steps, warmup, cfg.optim.min_lr)
        self.step = build_train_step(cfg, self.objective, self.rank, self.world)
        self.optimizer = self.step.optimizer
        self.position = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "skipped_steps": 0,
                         "seed": cfg.train.seed}
        self.skip_guard = SkipGuard(cfg.train.max_consecutive_skips)
        self._saved = None  # (step, path) of the newest checkpoint of this run
        self.logger = None
        self._start_run(resume, overwrite, resume_allow)  # lock, settle the directory, resume, open the log
        self.evaluator = None
        if cfg.train.eval_every and cfg.train.eval_data and self.is_main:
            from mindclip.eval import HeldOutEvaluator

            self.evaluator = HeldOutEvaluator(self.clip, cfg.train.eval_data)

    # ----------------------------------------------------------------- data
    def _epoch_dataset(self, epoch, skip_batches):
        return create_dataset(self.data_cfg, rank=self.rank, world_size=self.world, epoch=epoch,
                              skip_batches=skip_batches)

    # ----------------------------------------------------- run directory
    def _say(self, text):
        print(text, file=self.stream, flush=True)

    def _check_start(self, resume, overwrite, resume_allow):
        """Everything that can refuse the run, before the runtime starts or anything is built."""
        check_run(self.cfg, resume)
        check_run_dir(self.cfg.train.output_dir, resume, overwrite)
        return plan_resume(self.cfg, resume, resume_allow, say=self._say)

    def _start_run(self, resume, overwrite, resume_allow):
        """Rank 0 locks the output directory for the run's lifetime and settles its files; every rank
        loads the resumed state; rank 0 opens the log and writes config.yaml."""
        out = self.cfg.train.output_dir
        if self.is_main:
            self.run_lock = claim_run_dir(out, resume, overwrite, say=self._say)
        try:
            if self.is_main:
                settle_output_dir(self.resume_plan, out, say=self._say)
            if self.resume_plan:
                self._resume(self.resume_plan)
            self.logger = TrainLogger(out, self.total_steps, self.cfg.train.log_every, enabled=self.is_main,
                                      stream=self.stream)
            self._log_resume(resume_allow)
            if self.is_main:
                dump_yaml(self.cfg, os.path.join(out, "config.yaml"))
                self.logger.message(self._describe_step())
        except BaseException:
            self.close()
            raise

    def close(self):
        """Release the output directory (also done at the end of `run`); safe to call twice."""
        if self.logger is not None:
            self.logger.close()
        if self.run_lock is not None:
            self.run_lock.release()
            self.run_lock = None

    # --------------------------------------------------------------- resume
    def _resume(self, plan):
        meta = ckpt.load_training_checkpoint(plan.path, self.net, self.clip, self.optimizer,
                                             self.step.loss_scale, state=plan.state)
        plan.state = None  # the entries are in the network now
        if meta["seed"] != self.cfg.train.seed:
            raise RunError(f"{plan.path}: saved with train.seed={meta['seed']}, config has {self.cfg.train.seed}")
        self.position.update(meta)
        self.resumed_from = plan.path
        inside = os.path.dirname(os.path.abspath(plan.path)) == os.path.abspath(self.cfg.train.output_dir)
        if inside and os.path.basename(plan.path) != "last.ckpt":
            self._saved = (meta["step"], plan.path)

    def _log_resume(self, resume_allow):
        plan = self.resume_plan
        if plan is not None:
            self.logger.log_event(plan.step, "resume", checkpoint=plan.path, config_changes=plan.config_changes,
                                  resume_allow=list(resume_allow),
                                  passed_over=[{"path": p, "reason": r} for p, r in plan.passed_over])

    def _save(self):
        if not self.is_main:
            return
        out = self.cfg.train.output_dir
        path = os.path.join(out, ckpt.CKPT_PATTERN.format(self.position["step"]))
        ckpt.save_training_checkpoint(path, self.net, self.clip, self.optimizer,
                                      self.step.loss_scale, self.position)
        ckpt.prune_checkpoints(out, self.cfg.train.keep_checkpoints)
        self._saved = (self.position["step"], path)
        return path

    def _checkpoint_now(self):
        """A checkpoint of the current step: the one saved at this step, or a new one."""
        if self._saved is not None and self._saved[0] == self.position["step"]:
            return self._saved[1]
        return self._save()

    def _publish_last(self, path):
        """Copy the final checkpoint to OUTPUT_DIR/last.ckpt (atomically): the stable name tools use."""
        if not self.is_main:
            return path
        last = os.path.join(self.cfg.train.output_dir, "last.ckpt")
        tmp = os.path.join(self.cfg.train.output_dir, "last.partial.ckpt")
        shutil.copyfile(path, tmp)
        os.replace(tmp, last)
        return last

    # ----------------------------------------------------------------- loop
    def _batches(self):
        """Batches in order from the saved data position on; the position advances before each yield."""
        pos = self.position
        used = self.steps_per_epoch * self.accum  # a trailing partial accumulation is dropped
        while True:
            if pos["batch_in_epoch"] < used:
                dataset = self._epoch_dataset(pos["epoch"], pos["batch_in_epoch"])
                for batch in dataset.create_tuple_iterator(num_epochs=1):
                    pos["batch_in_epoch"] += 1
                    yield batch
                    if pos["batch_in_epoch"] >= used:
                        break
            pos["epoch"] += 1
            pos["batch_in_epoch"] = 0

    def _micro_batches(self):
        """Lists of `accumulation_steps` consecutive batches: the micro-batches of one optimizer step."""
        group = []
        for batch in self._batches():
            group.append(batch)
            if len(group) == self.accum:
                yield group
                group = []

    def run(self, stop_after=None):
        """Train to `total_steps` (or `stop_after` more optimizer steps); return a summary dict."""
        cfg, pos = self.cfg.train, self.position
        last_record = None
        end_step = self.total_steps if not stop_after else min(self.total_steps, pos["step"] + stop_after)
        t0 = time.time()
        for micro_batches in (self._micro_batches() if pos["step"] < end_step else ()):
            step = pos["step"]
            result = self.step(self.lr[step], step / self.total_steps, micro_batches)
            pos["skipped_steps"] += int(not result.finite)
            pos["step"] += 1
            last_record = self._record(result, time.time() - t0, micro_batches[0])
            self.logger.log(last_record)
            if not result.finite:
                self.logger.message(f"step {pos['step']}: non-finite loss or gradients "
                                    f"(loss={last_record['loss']}); update skipped")
            if cfg.save_every and pos["step"] % cfg.save_every == 0:
                self._save()
            if self.evaluator is not None and pos["step"] % cfg.eval_every == 0:
                self._evaluate()
            if pos["step"] >= end_step or self.skip_guard.observe(pos["step"], result.finite):
                break
            t0 = time.time()
        return self._finish(last_record)

    def _finish(self, last_record):
        """Save where the run stopped, publish last.ckpt when it is complete, release the directory."""
        pos = self.position
        stopped_by_skips = 0 < self.skip_guard.limit <= self.skip_guard.in_a_row
        final = self._checkpoint_now() if last_record is not None or pos["step"] >= self.total_steps else None
        if pos["step"] >= self.total_steps and not stopped_by_skips:
            final = self._publish_last(final)
        self.close()
        if stopped_by_skips:
            raise self.skip_guard.error(final)
        return {"steps": pos["step"], "skipped_steps": pos["skipped_steps"], "last": last_record,
                "checkpoint": final, "output_dir": self.cfg.train.output_dir}

    def _describe_step(self):
        """One line saying how a step runs: the global batch, accumulation, precision, recompute."""
        cfg = self.cfg
        local = cfg.data.batch_size
        text = f"step: global batch {local * self.world * self.accum} = {self.world} rank(s) x "
        text += f"{self.accum} micro-batch(es) x {local}"
        if self.accum > 1:
            exact = "exact big-batch loss" if cfg.optim.accumulation == "features" else "mean of micro-batch losses"
            text += f", accumulation={cfg.optim.accumulation} ({exact})"
        precision = "float32" if cfg.train.amp_level == "O0" else f"{cfg.train.amp_level} {cfg.train.amp_dtype}"
        return (text + f", precision {precision}, loss_scale={resolved_loss_scale(cfg.train)}, "
                f"recompute={cfg.train.recompute}")

    def _evaluate(self):
        """Held-out zero-shot / retrieval metrics, logged as an `eval` record (rank 0 only)."""
        metrics = self.evaluator()
        self.net.set_train(True)  # the evaluator runs the towers in inference mode
        self.logger.log_eval(self.position["step"], metrics)

    def _record(self, result, step_time, batch):
        step = self.position["step"]
        images = batch[0].shape[0] * self.world * self.accum
        return {
            "step": step, "epoch": self.position["epoch"], "lr": float(self.lr[step - 1]),
            "loss": result.loss,
            "parts": {name: float(v) for name, v in zip(self.objective.part_names, result.parts)},
            "logit_scale": float(np.exp(self.clip.logit_scale.asnumpy())),
            "step_time": step_time, "images_per_s": images / max(step_time, 1e-9),
            "text_length": batch[caption_tokens_index(self.cfg.method)].shape[1],
            "skipped_steps": self.position["skipped_steps"], "finite": result.finite,
        }
