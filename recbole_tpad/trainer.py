"""Trainers of the plugin, found by name as RecBole-GNN does (``<Model>Trainer``), and what the
plugin adds to every model's trainer (:func:`plugin_trainer`): pickle-free checkpoints, epoch
timing, the ``-latest`` checkpoint after every validated epoch, the time budget
(``max_train_minutes``), history-free rankings and the test metrics by slice.

Private RecBole methods are overridden here and nowhere else, each for the reason given:
``_save_checkpoint`` / ``resume_checkpoint`` / ``evaluate``'s loading (RecBole pickles its
Config into checkpoints, so reading them could run code: :mod:`recbole_tpad.checkpoints`),
``_train_epoch`` (the only hook around one epoch's training, for its wall time),
``_full_sort_batch_eval`` (ranking without history items, ``exclude_history``) and
``_build_optimizer`` (a model with no weights).
"""

import time

import torch
from recbole.trainer import Trainer

from recbole_tpad.checkpoints import (CheckpointError, check_same_data, differing_settings,
                                      latest_checkpoint_path, load_checkpoint, save_checkpoint,
                                      set_rng_state, unused_checkpoint_path)


class TimeBudgetReached(Exception):
    """Raised after a validated epoch once ``max_train_minutes`` have passed (ends ``fit``)."""


class SafeCheckpoints:
    """Checkpoints in :mod:`recbole_tpad.checkpoints`' format: no pickle, atomic, RNG saved
    (the global ones and ``train_loader``'s shuffling generator, which
    :func:`recbole_tpad.quick_start.build_experiment` sets), so a resumed run reproduces the
    uninterrupted one."""

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        path = kwargs.pop("saved_model_file", self.saved_model_file)
        save_checkpoint(path, self, epoch)
        if verbose:
            self.logger.info(f"Saving current: {path}")

    def resume_checkpoint(self, resume_file):
        state = load_checkpoint(resume_file, self.device)
        changed = differing_settings(state["config"], self.config)
        if changed:
            listed = ", ".join(f"{k}: {saved!r} in the checkpoint, {now!r} now"
                               for k, (saved, now) in list(changed.items())[:8])
            raise CheckpointError(
                f"{resume_file}: saved with other settings ({listed}). Resume with the settings "
                "it was saved with, or start a new run without --resume.")
        self.saved_model_file = str(resume_file)
        self.start_epoch = state["epoch"] + 1
        self.cur_step = state["cur_step"]
        self.best_valid_score = state["best_valid_score"]
        self.load_weights(state, resume_file)
        if state["optimizer"] and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"], getattr(getattr(self, "train_loader", None), "generator", None))
        self.resumed_history = state.get("history") or {}  # older checkpoints have none
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def load_weights(self, state, path):
        check_same_data(state, self, path)
        try:
            self.model.load_state_dict(state["state_dict"])
        except RuntimeError as error:
            lines = str(error).splitlines()  # torch's first line is generic; the next names a tensor
            detail = lines[1].strip() if len(lines) > 1 else lines[0]
            raise CheckpointError(f"{path}: its weights do not fit this model ({detail}); "
                                  "it was saved with other model settings or data") from None
        self.model.load_other_parameter(state.get("other_parameter"))

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if load_best_model:
            path = model_file or self.saved_model_file
            self.load_weights(load_checkpoint(path, self.device), path)
            self.logger.info(f"Loading model parameters from {path}")
        return super().evaluate(eval_data, load_best_model=False, model_file=model_file,
                                show_progress=show_progress)


class HistoryExcluding:
    """Full ranking that never lists an item of the session's own history (``exclude_history``;
    the RecTools / eSASRec protocol's ``filter_viewed``)."""

    def _full_sort_batch_eval(self, batched_data):
        interaction, scores, positive_u, positive_i = super()._full_sort_batch_eval(batched_data)
        seen = interaction[self.model.ITEM_SEQ].to(scores.device)
        return interaction, scores.scatter(1, seen, -torch.inf), positive_u, positive_i


class RunRecording:
    """What a comparison needs from ``fit``: the wall time of every training epoch
    (``epoch_times``), the validation curve, the ``-latest`` checkpoint after every validated
    epoch (so an interrupted run resumes where it stopped), the ``max_train_minutes`` budget
    (the best model so far is kept and tested) and why training stopped (``stopped_by``)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.epoch_times, self.valid_curve, self.stopped_by, self.latest_checkpoint = [], [], None, None

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        # a resumed run continues the history its checkpoint holds (max_train_minutes counts
        # this process only)
        history = getattr(self, "resumed_history", None) or {}
        self.epoch_times = list(history.get("epoch_times", []))
        self.valid_curve = [dict(point) for point in history.get("valid_curve", [])]
        self.stopped_by = None
        if saved and not self.start_epoch:  # a resumed run writes on to its own files
            self.saved_model_file = unused_checkpoint_path(self.saved_model_file)
        self.latest_checkpoint = latest_checkpoint_path(self.saved_model_file) if saved else None
        budget = self.config["max_train_minutes"]
        started = time.time()
        elapsed_before = self.valid_curve[-1]["seconds"] if self.valid_curve else 0.0

        def after_validation(epoch_idx, valid_score):
            self.valid_curve.append({"epoch": epoch_idx, "valid_score": float(valid_score),
                                     "seconds": elapsed_before + time.time() - started})
            if saved:  # RecBole saved the best model already; this is the last state
                self._save_checkpoint(epoch_idx, verbose=False,
                                      saved_model_file=self.latest_checkpoint)
            if callback_fn:
                callback_fn(epoch_idx, valid_score)
            if budget and time.time() - started > 60 * budget:
                raise TimeBudgetReached(epoch_idx)

        try:
            result = super().fit(train_data, valid_data, verbose=verbose, saved=saved,
                                 show_progress=show_progress, callback_fn=after_validation)
        except TimeBudgetReached as reached:
            self.logger.info(f"max_train_minutes={budget} reached after epoch {reached.args[0]}")
            self.stopped_by = "time budget"
            return self.best_valid_score, self.best_valid_result
        # judged from the last validated epoch's index, so a resumed run counts the whole run
        capped = self.valid_curve and self.valid_curve[-1]["epoch"] + 1 >= self.config["epochs"]
        self.stopped_by = "epoch cap" if capped else "early stopping"
        return result

    def _train_epoch(self, *args, **kwargs):
        tic = time.perf_counter()
        result = super()._train_epoch(*args, **kwargs)
        self.epoch_times.append(time.perf_counter() - tic)
        return result

    def train_one_epoch(self, train_data, epoch_idx=0):
        """Train one epoch outside ``fit`` (the cost benchmark); returns its wall seconds."""
        self._train_epoch(train_data, epoch_idx, show_progress=False)
        return self.epoch_times[-1]

    def full_ranking_batch(self, batched_data):
        """``(interaction, scores, positive_u, positive_i)`` of one full-ranking batch, exactly as
        ``evaluate`` scores it (history exclusion included): what the slices are computed from."""
        return self._full_sort_batch_eval(batched_data)

    def evaluate_by_target(self, train_data, test_data):
        """The test metrics of the current model by slice (warm / cold / tail / head)."""
        from recbole_tpad.evaluation import evaluate_by_target

        return evaluate_by_target(self, train_data, test_data, self.config)


#: What every trainer of the plugin's runs gets, in method-resolution order.
PLUGIN_MIXINS = (RunRecording, SafeCheckpoints)


class TPADTrainer(*PLUGIN_MIXINS, Trainer):
    """TPAD's trainer (and SASRecPub's): RecBole's ``Trainer`` with the plugin's checkpoints,
    timing, latest checkpoint, budget and slices. Registered with RecBole, so its own
    ``run_recbole(model="TPAD")`` gets it too."""


SASRecPubTrainer = TPADTrainer


class ContentKNNTrainer(*PLUGIN_MIXINS, Trainer):
    """ContentKNN has no weights: no optimizer (Adam refuses an empty parameter list), and
    ``fit`` only evaluates on the validation split (``stopped_by: no training``)."""

    def _build_optimizer(self, **kwargs):
        return None

    def fit(self, train_data, valid_data=None, verbose=True, saved=True, show_progress=False,
            callback_fn=None):
        self.stopped_by = "no training"
        if valid_data is None:
            return -1, None
        result = self.evaluate(valid_data, load_best_model=False, show_progress=show_progress)
        self.best_valid_result = result
        self.best_valid_score = result[self.valid_metric]
        return self.best_valid_score, result

    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        # nothing was fitted or saved: there is no best model to load
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)


def plugin_trainer(trainer_class, config):
    """``trainer_class`` (RecBole's or the plugin's) with :data:`PLUGIN_MIXINS` and, when
    ``exclude_history`` is set, history-free rankings. Same name, same behaviour otherwise."""
    mixins = () if issubclass(trainer_class, PLUGIN_MIXINS[0]) else PLUGIN_MIXINS
    if config["exclude_history"]:
        mixins = (HistoryExcluding,) + mixins
    if not mixins:
        return trainer_class
    return type(trainer_class.__name__, mixins + (trainer_class,), {"__module__": __name__})
