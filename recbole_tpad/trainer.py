"""Trainers of the plugin, found by name as RecBole-GNN does (``<Model>Trainer``), and what the
plugin adds to every model's trainer (:func:`plugin_trainer`).

Private RecBole methods are overridden here and nowhere else, each for the reason given:
``_save_checkpoint`` / ``resume_checkpoint`` / ``evaluate``'s loading (RecBole pickles its
Config into checkpoints, so reading them could run code: :mod:`recbole_tpad.checkpoints`),
``_full_sort_batch_eval`` (ranking without history items, ``exclude_history``) and
``_build_optimizer`` (a model with no weights).
"""

import torch
from recbole.trainer import Trainer

from recbole_tpad.checkpoints import (CheckpointError, check_same_data, differing_settings,
                                      load_checkpoint, save_checkpoint, set_rng_state)


class ContentKNNTrainer(Trainer):
    """ContentKNN has no weights: no optimizer (Adam refuses an empty parameter list);
    :func:`recbole_tpad.quick_start.run` evaluates it without fitting."""

    def _build_optimizer(self, **kwargs):
        return None


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
        self._load_weights(state, resume_file)
        if state["optimizer"] and self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        loader = getattr(self, "train_loader", None)
        if loader is not None and "train_loader" in state["rng"]:
            loader.generator.set_state(state["rng"]["train_loader"])
        self.logger.info(f"Checkpoint loaded. Resume training from epoch {self.start_epoch}")

    def _load_weights(self, state, path):
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
            self._load_weights(load_checkpoint(path, self.device), path)
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


def plugin_trainer(trainer_class, config):
    """``trainer_class`` (RecBole's or the plugin's) with safe checkpoints and, when
    ``exclude_history`` is set, history-free rankings. Same name, same behaviour otherwise."""
    mixins = (SafeCheckpoints,) + ((HistoryExcluding,) if config["exclude_history"] else ())
    return type(trainer_class.__name__, mixins + (trainer_class,), {"__module__": __name__})
