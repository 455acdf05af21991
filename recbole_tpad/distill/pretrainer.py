"""The TPAD pretrainer: knowledge acquisition, then transition distillation, then the features.

    python run_recbole_tpad.py --stage=pretrain --dataset=demo

Stage 1 trains the ``knowledge`` adapter (and the image projector) on a generation task: each
item's text with a span masked out, the image if any, and the span as the target. Then the
frozen lower layers' states of every item are computed once (LoRA sits on the top
``lora_top_layers`` only), z_K of stage 1 is stored, and stage 2 trains both adapters, the
heads and the estimators on training-split sessions: next-item InfoNCE + alpha HMIE + beta
AMIE + gamma generation. Finally z_U, z_K (stage 1) and z_T of every item are written as
feature files TPAD reads (``--feature_source=tpad-zU``).

Everything lives in one work folder per (dataset, config): a checkpoint every
``checkpoint_every`` steps and at every stage end (adapters, heads, estimators, optimizers and
random states), so a killed run resumes where it stopped and ends with the same features;
the lower-layer states in resumable chunks; losses in TensorBoard, a JSONL file and a PNG.
This module never imports RecBole's trainer: it is its own stage.
"""

import hashlib
import json
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from recbole_tpad.data.features import library_versions, write_feature_file
from recbole_tpad.data.sources import FeatureSource
from recbole_tpad.distill.objectives import TransitionDistillation
from recbole_tpad.distill.sessions import training_sessions
from recbole_tpad.mllm.backbone import LoraSettings
from recbole_tpad.mllm.prompts import ItemContent, dataset_items
from recbole_tpad.paths import properties_dir
from recbole_tpad.runtime import peak_rss_mb

#: Bumped whenever a change makes old checkpoints and caches invalid (it is in the work folder's
#: name, so a new version never resumes an old run). 2: standardised heads, unit-vector CLUB;
#: 3: LoRA weights checkpointed per adapter through peft's get/set_peft_model_state_dict.
PRETRAINER_VERSION = 3
#: Keys outside the pretrain yaml that a run may still carry (RecBole's, from shared files).
PASSTHROUGH = {"model", "dataset", "state"}


#: Settings that change how a run is done, not what it computes (not in the work folder's key).
BOOKKEEPING = ("show_progress", "threads", "checkpoint_every", "data_path", "checkpoint_dir",
               "feature_prefix")


def result_settings(config):
    """The settings a pretraining result depends on."""
    return {k: v for k, v in config.items() if k not in BOOKKEEPING}


class PretrainConfigError(ValueError):
    """An unknown or invalid pretrain setting; the message lists what exists."""


def pretrain_keys():
    """Every setting the pretrainer knows: the keys of ``properties/pretrain/overall.yaml``."""
    return set(yaml.safe_load((properties_dir() / "pretrain" / "overall.yaml").read_text()))


def work_dir_for(dataset, config, data_dir):
    """A run's work folder: one per (pretrainer version, result settings, dataset contents)."""
    from dataset_tools.atomic import dataset_checksum

    key = json.dumps([PRETRAINER_VERSION, result_settings(config),
                      dataset_checksum(data_dir, dataset)], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    return Path(config["checkpoint_dir"]).resolve() / "pretrain" / f"{dataset}-{digest}"


def features_current(dataset, config, data_dir, views=("zU", "zK", "zT")):
    """True when this run's feature files (``views`` of them) are already written: same
    pretrainer version, same result settings, same work folder, unchanged dataset."""
    from recbole_tpad.data.features import is_current, read_metadata

    expected = json.loads(json.dumps(result_settings(config), default=str))
    # the folder's name is its key; where the project lives (another clone, another machine) is not
    work_dir = work_dir_for(dataset, config, data_dir).name
    for view in views:
        path = feature_path(data_dir, dataset, view, config.get("feature_prefix", "tpad"))
        if not (path.is_file() and is_current(path, dataset, data_dir)):
            return False
        producer = read_metadata(path)["producer"]
        if producer.get("version") != PRETRAINER_VERSION or Path(producer.get("work_dir", "")).name != work_dir \
                or result_settings(producer.get("config", {})) != expected:
            return False
    return True


def progress(iterable=None, show=True, **kwargs):
    """A tqdm bar with its time estimate. ``show_progress: False`` (the comparison's quiet mode)
    does not silence it: the bar is redrawn once a minute instead, so a long pretraining run
    still says where it is and how long it has left."""
    return tqdm(iterable, mininterval=0.1 if show else 60, ascii=not show, **kwargs)


def pretrain_config(dataset, config_file_list=None, config_dict=None):
    """``properties/pretrain/overall.yaml`` < ``<dataset>.yaml`` < files < ``config_dict``.

    Keys in ``config_file_list`` that the pretrainer does not know are ignored (they may be a
    RecBole run's settings); unknown keys in ``config_dict`` (the command line) are refused.
    """
    root = properties_dir() / "pretrain"
    config = yaml.safe_load((root / "overall.yaml").read_text())
    known = set(config)
    specific = root / f"{dataset}.yaml"
    if specific.is_file():
        config.update(yaml.safe_load(specific.read_text()) or {})
    for path in config_file_list or []:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        config.update({k: v for k, v in loaded.items() if k in known})
    unknown = sorted(set(config_dict or {}) - known - PASSTHROUGH)
    if unknown:
        raise PretrainConfigError(f"unknown pretrain setting(s) {unknown}; known: {sorted(known)}")
    config.update({k: v for k, v in (config_dict or {}).items() if k in known})
    check_pretrain_values(config)
    config["dataset"] = dataset
    return config


#: Pretrain settings that must be whole numbers: at least 1, or (steps) at least 0.
_AT_LEAST_ONE = ("stage1_batch", "stage2_batch", "encode_batch", "checkpoint_every", "lora_rank",
                 "z_dim", "estimator_hidden", "max_prefix", "threads", "gen_items")
_AT_LEAST_ZERO = ("stage1_steps", "stage2_steps")
_POSITIVE = ("stage1_lr", "stage2_lr", "club_lr", "temperature", "lora_alpha")


def check_pretrain_values(config):
    """Refuse impossible pretrain settings before any model is loaded (a run with negative
    steps once trained nothing for minutes and wrote features that later runs trusted)."""
    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    for key in _AT_LEAST_ONE + _AT_LEAST_ZERO:
        low = 1 if key in _AT_LEAST_ONE else 0
        if not whole(config.get(key)) or config[key] < low:
            raise PretrainConfigError(f"{key}={config.get(key)!r}: give a whole number of at least {low}")
    for key in _POSITIVE:
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise PretrainConfigError(f"{key}={value!r}: give a positive number")
    if not 0 < config.get("mask_ratio", 0.3) < 1:
        raise PretrainConfigError(f"mask_ratio={config.get('mask_ratio')!r}: give a number between 0 and 1")


def feature_path(data_dir, dataset, view="zU", prefix="tpad"):
    """What ``--feature_source=<prefix>-<view>`` reads (``tpad-zU``; an ablation writes under its
    own prefix, e.g. ``tpad-noHMIE-zU``): :class:`recbole_tpad.data.sources.FeatureSource`'s path."""
    return FeatureSource(prefix, view).path(data_dir, dataset)


def items_checksum(items):
    """SHA-256 of the items in order: ids, texts and image bytes."""
    digest = hashlib.sha256()
    for item in items:
        image = hashlib.sha256(Path(item.image).read_bytes()).hexdigest() if item.image else "-"
        digest.update(json.dumps([item.item_id, item.text, image]).encode())
    return digest.hexdigest()


def masked_span(item, rng, ratio):
    """(the item with a span of its words replaced by ``___``, the span) for generation."""
    words = item.text.split()
    if len(words) < 2:
        return ItemContent(item.item_id, "___", item.image), item.text or "none"
    length = max(1, int(round(ratio * len(words))))
    start = int(rng.integers(0, len(words) - length + 1))
    masked = words[:start] + ["___"] + words[start + length:]
    return ItemContent(item.item_id, " ".join(masked), item.image), " ".join(words[start:start + length])


class Pretrainer:
    """One pretraining run; :meth:`run` does (or resumes) it and returns the feature paths."""

    def __init__(self, dataset, config, backbone=None, data_dir=None):
        from recbole_tpad.data.locate import ensure_dataset

        self.config = config
        self.dataset = dataset
        self.data_dir = Path(data_dir) if data_dir else ensure_dataset(dataset, config["data_path"])
        self.items = dataset_items(self.data_dir, dataset, images=config["use_images"])
        if not self.items:
            raise PretrainConfigError(f"{self.data_dir / (dataset + '.item')} is missing or empty: "
                                      "the pretrainer needs item text and/or images")
        self.index = {item.item_id: i for i, item in enumerate(self.items)}
        sessions = training_sessions(self.data_dir, dataset)
        self.sessions = [s for s in ([self.index[i] for i in session if i in self.index]
                                     for session in sessions) if len(s) >= 2]
        self._backbone = backbone
        self.writer = None
        self.work_dir = self._work_dir()
        self.log_rows = []

    # ------------------------------------------------------------------ set-up
    def _work_dir(self):
        folder = work_dir_for(self.dataset, self.config, self.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=True))
        return folder

    def _build(self):
        from recbole_tpad.mllm.load import load_backbone

        c = self.config
        torch.manual_seed(c["seed"])
        backbone = self._backbone or load_backbone(c["backbone"])
        if not hasattr(backbone, "lower_states"):
            raise PretrainConfigError(
                f"backbone {c['backbone']!r} has no split forward (lower_states); the pretrainer "
                "needs a composed backbone (offline, offline-text, composed:<LM folder>)")
        self.n_layers = len(backbone.decoder()[0].layers)
        top = c["lora_top_layers"]
        self.upto = 0 if top is None else max(0, self.n_layers - int(top))
        backbone.add_adapters(LoraSettings(rank=c["lora_rank"], alpha=c["lora_alpha"],
                                           lora_layers=list(range(self.upto, self.n_layers))))
        self.backbone = backbone
        self.objectives = TransitionDistillation(backbone.hidden_size, c["z_dim"],
                                                 c["estimator_hidden"], c["temperature"])
        stage1_params = backbone.adapter_parameters("knowledge")
        if backbone.projector is not None:
            stage1_params += list(backbone.projector.parameters())
        self.opt1 = torch.optim.Adam(stage1_params, lr=c["stage1_lr"])
        self.opt2 = torch.optim.Adam(backbone.adapter_parameters("knowledge")
                                     + backbone.adapter_parameters("transfer")
                                     + self.objectives.main_parameters(), lr=c["stage2_lr"])
        self.opt_club = torch.optim.Adam(self.objectives.club_parameters(), lr=c["club_lr"])
        self.rng = np.random.default_rng(c["seed"])

    # ------------------------------------------------------------------ checkpoints
    def _trainable_state(self):
        from peft import get_peft_model_state_dict

        host = self.backbone.lora_host()  # peft's own per-adapter state, not a name filter
        lora = {adapter: {k: v.detach().clone() for k, v in
                          get_peft_model_state_dict(host, adapter_name=adapter).items()}
                for adapter in self.backbone.adapter_names()}
        return {"lora": lora, "extra": self.backbone.extra_state(),
                "objectives": self.objectives.state_dict()}

    def save_checkpoint(self, stage, step):
        state = {"stage": stage, "step": step, **self._trainable_state(),
                 "opt1": self.opt1.state_dict(), "opt2": self.opt2.state_dict(),
                 "opt_club": self.opt_club.state_dict(),
                 "rng": self.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                 "python_rng": random.getstate(), "log": self.log_rows}
        partial = self.work_dir / "checkpoint.pt.part"
        torch.save(state, partial)
        partial.replace(self.work_dir / "checkpoint.pt")

    def load_checkpoint(self):
        path = self.work_dir / "checkpoint.pt"
        if not path.is_file():
            return None, 0
        state = torch.load(path, weights_only=True)  # tensors, numbers, lists only: no pickle
        from peft import set_peft_model_state_dict

        for adapter, weights in state["lora"].items():
            result = set_peft_model_state_dict(self.backbone.lora_host(), weights, adapter_name=adapter)
            if getattr(result, "unexpected_keys", None):
                raise PretrainConfigError(f"{path}: adapter {adapter!r} holds weights this backbone "
                                          f"does not have ({result.unexpected_keys[:3]}); delete the "
                                          "work folder to start over")
        if state["extra"]:
            self.backbone.load_extra_state(state["extra"])
        self.objectives.load_state_dict(state["objectives"])
        self.opt1.load_state_dict(state["opt1"])
        self.opt2.load_state_dict(state["opt2"])
        self.opt_club.load_state_dict(state["opt_club"])
        self.rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        self.log_rows = state["log"]
        return state["stage"], state["step"]

    # ------------------------------------------------------------------ logging
    def log(self, stage, step, values):
        row = {"stage": stage, "step": step, **{k: float(v) for k, v in values.items()}}
        self.log_rows.append(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{stage}/{key}", float(value), step)

    def plot(self):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        panels = [("stage1", ["gen"]), ("stage2", ["next", "gen"]),
                  ("stage2", ["hmie_item", "hmie_session"]), ("stage2", ["amie_t", "amie_k"])]
        titles = ["stage 1: generation loss", "stage 2: next-item and generation losses",
                  "HMIE: CLUB upper bounds (nats)", "AMIE: InfoNCE lower bounds (nats)"]
        fig, axes = plt.subplots(1, 4, figsize=(17, 3.4))
        for ax, (stage, keys), title in zip(axes, panels, titles):
            rows = [r for r in self.log_rows if r["stage"] == stage]
            for key in keys:
                points = [(r["step"], r[key]) for r in rows if key in r]
                if points:
                    x, y = zip(*points)
                    ax.plot(x, y, label=key, linewidth=1)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("step")
            if any(key in r for r in rows for key in keys):
                ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(self.work_dir / "curves.png", dpi=110)
        plt.close(fig)

    # ------------------------------------------------------------------ stage 1
    def stage1_step(self):
        c = self.config
        batch = self.rng.choice(len(self.items), size=min(c["stage1_batch"], len(self.items)),
                                replace=False)
        pairs = [masked_span(self.items[i], self.rng, c["mask_ratio"]) for i in batch]
        loss = self.backbone.generation_loss([p[0] for p in pairs], [p[1] for p in pairs],
                                             prompt=c["generate_prompt"], adapter="knowledge")
        self.opt1.zero_grad()
        loss.backward()
        self.opt1.step()
        return {"gen": loss.item()}

    # ------------------------------------------------------------------ lower layers
    def lower_states_dir(self):
        """Where the frozen layers' states live: one folder per (backbone weights incl. the
        fixed projector, encode prompt, depth, item contents), shared by every run that agrees
        on those (ablations, and datasets derived from one another, such as ``X-session``):
        they depend on nothing a run trains after stage 1."""
        key = json.dumps([PRETRAINER_VERSION, self.backbone.fingerprint(), self.config["encode_prompt"],
                          self.upto, items_checksum(self.items)], sort_keys=True, default=str)
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        return Path(self.config["checkpoint_dir"]).resolve() / "pretrain" / "lower-states" / digest

    def lower_states(self, chunk=1024):
        """Frozen layers ``0:upto`` of every item's encode prompt, in resumable chunks (fp16)."""
        c = self.config
        folder = self.lower_states_dir()
        folder.mkdir(parents=True, exist_ok=True)
        states = []
        chunks = range(0, len(self.items), chunk)
        bar = progress(total=len(self.items), desc="lower layers (once)", unit="item",
                       show=c["show_progress"])
        for start in chunks:
            path = folder / f"chunk-{start // chunk:05d}.pt"
            if path.is_file():
                part = torch.load(path, weights_only=True)
            else:
                part = []
                items = self.items[start:start + chunk]
                with torch.no_grad():
                    for b in range(0, len(items), c["encode_batch"]):
                        batch = self.backbone.lower_states(items[b:b + c["encode_batch"]],
                                                           c["encode_prompt"], self.upto)
                        part += [s.to(torch.float16).clone() for s in batch]
                tmp = path.with_suffix(".part")
                torch.save(part, tmp)
                tmp.replace(path)
            states += part
            bar.update(len(part))
        bar.close()
        return states

    def encode(self, rows, adapter):
        return self.backbone.encode_from_lower([self.lower[r].float() for r in rows], self.upto, adapter)

    def encode_all(self, adapter, desc):
        out = []
        bs = self.config["encode_batch"] * 2
        with torch.no_grad():
            for start in progress(range(0, len(self.items), bs), desc=desc,
                                  show=self.config["show_progress"]):
                out.append(self.encode(range(start, min(start + bs, len(self.items))), adapter))
        return torch.cat(out)

    # ------------------------------------------------------------------ stage 2
    def sample_sessions(self):
        c = self.config
        picks = self.rng.choice(len(self.sessions), size=min(c["stage2_batch"], len(self.sessions)),
                                replace=False)
        prefixes, targets = [], []
        for p in picks:
            session = self.sessions[p]
            cut = int(self.rng.integers(1, len(session)))
            prefixes.append(session[max(0, cut - c["max_prefix"]):cut])
            targets.append(session[cut])
        return prefixes, targets

    def session_states(self, prefix_rows, h_t):
        """Transfer-MLLM over the prefix items as soft tokens (top layers, ``transfer`` adapter)."""
        soft = [self.objectives.soft_token(h_t[rows]) for rows in prefix_rows]
        with self.backbone.using("transfer"):
            batch, mask, positions = self.backbone.pad_left(soft)
            hidden = self.backbone.run_layers(batch, mask, positions, self.upto, None)
        return hidden[:, -1]

    def stage2_step(self):
        c = self.config
        prefixes, targets = self.sample_sessions()
        unique = sorted({i for p in prefixes for i in p} | set(targets))
        row = {item: r for r, item in enumerate(unique)}
        h_t = self.encode(unique, "transfer")
        h_k = self.encode(unique, "knowledge")
        z_k1 = self.z_k1[unique]
        prefix_rows = [torch.tensor([row[i] for i in p]) for p in prefixes]
        width = max(len(p) for p in prefixes)
        prefix_index = torch.zeros(len(prefixes), width, dtype=torch.long)
        prefix_mask = torch.zeros(len(prefixes), width, dtype=torch.bool)
        for b, rows in enumerate(prefix_rows):
            prefix_index[b, :len(rows)] = rows
            prefix_mask[b, :len(rows)] = True
        session = self.session_states(prefix_rows, h_t)
        out = self.objectives.losses(h_t, h_k, z_k1, session, prefix_index, prefix_mask,
                                     torch.tensor([row[t] for t in targets]),
                                     use_hmie=c["use_hmie"], use_amie=c["use_amie"],
                                     lambda_keep=c["lambda_keep"])
        loss = out["next"] + c["alpha_hmie"] * out["hmie"] + c["beta_amie"] * out["amie"]
        if c["use_generation"] and c["gamma_gen"] > 0:
            chosen = self.rng.choice(unique, size=min(c["gen_items"], len(unique)), replace=False)
            pairs = [masked_span(self.items[i], self.rng, c["mask_ratio"]) for i in chosen]
            out["gen"] = self.backbone.generation_loss([p[0] for p in pairs], [p[1] for p in pairs],
                                                       prompt=c["generate_prompt"], adapter="knowledge")
            loss = loss + c["gamma_gen"] * out["gen"]
        self.opt2.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.opt2.param_groups[0]["params"], 1.0)
        self.opt2.step()
        # CLUB's q is fitted on the same pairs, in alternation with the main loss
        club = self.objectives.club_fit_loss(out["pairs"])
        self.opt_club.zero_grad()
        club.backward()
        self.opt_club.step()
        keys = ("next", "hmie_item", "hmie_session", "amie_t", "amie_k", "gen")
        return {"loss": loss.item(), "club_fit": club.item(),
                **{k: out[k].item() for k in keys if k in out}}

    # ------------------------------------------------------------------ the run
    def _loop(self, stage, steps, step_fn, start, interrupt_at):
        c = self.config
        bar = progress(range(start, steps), desc=stage, initial=start, total=steps,
                       show=c["show_progress"])
        for step in bar:
            if interrupt_at is not None and (stage, step) == tuple(interrupt_at):
                raise KeyboardInterrupt(f"interrupted at {stage} step {step}")
            values = step_fn()
            self.log(stage, step + 1, values)
            # quiet mode: the losses show at the minute redraws, not a line per step
            bar.set_postfix({k: f"{v:.3f}" for k, v in list(values.items())[:3]},
                            refresh=bool(c["show_progress"]))
            if (step + 1) % c["checkpoint_every"] == 0 or step + 1 == steps:
                self.save_checkpoint(stage, step + 1)

    def run(self, interrupt_at=None):
        """Pretrain (or resume) and write the feature files; returns ``{view: path}``."""
        from torch.utils.tensorboard import SummaryWriter

        c = self.config
        if features_current(self.dataset, c, self.data_dir):
            # a finished run: its features and summary.json stay as they are
            return {view: feature_path(self.data_dir, self.dataset, view, c["feature_prefix"])
                    for view in ("zU", "zK", "zT")}
        started = time.time()
        threads = torch.get_num_threads()
        torch.set_num_threads(c["threads"])
        timings = {}
        try:
            self._build()
            stage, step = self.load_checkpoint()
            self.writer = SummaryWriter(str(self.work_dir / "tensorboard"))
            order = ["stage1", "stage2", "done"]
            if stage is None:
                stage, step = "stage1", 0
            elif stage != "done" and step >= c[f"{stage}_steps"]:
                stage, step = order[order.index(stage) + 1], 0
            tic = time.time()
            if stage == "stage1" and c["use_generation"]:
                self._loop("stage1", c["stage1_steps"], self.stage1_step, step, interrupt_at)
                stage, step = "stage2", 0
            elif stage == "stage1":
                stage, step = "stage2", 0
            timings["stage1_s"] = time.time() - tic
            if self.backbone.projector is not None:  # fixed from here: lower states stay valid
                self.backbone.projector.requires_grad_(False)

            tic = time.time()
            self.lower = self.lower_states()
            timings["lower_states_s"] = time.time() - tic
            tic = time.time()
            z_k1_path = self.work_dir / "z_k_stage1.pt"
            if z_k1_path.is_file():
                self.z_k1 = torch.load(z_k1_path, weights_only=True)
            else:
                self.z_k1 = self.encode_all("knowledge", "stage-1 z_K")
                torch.save(self.z_k1, z_k1_path)
            with torch.no_grad():
                self.objectives.set_standardization(self.z_k1)
            timings["z_k1_s"] = time.time() - tic

            tic = time.time()
            if stage == "stage2" and c["use_stage2"]:
                if not self.sessions:
                    raise PretrainConfigError(f"{self.dataset}: no training session of 2+ known items")
                self._loop("stage2", c["stage2_steps"], self.stage2_step, step, interrupt_at)
            timings["stage2_s"] = time.time() - tic
            self.save_checkpoint("done", 0)

            tic = time.time()
            paths = self.write_features()
            timings["features_s"] = time.time() - tic
        finally:
            torch.set_num_threads(threads)
            if getattr(self, "writer", None) is not None:
                self.writer.close()
        self.plot()
        summary = {"dataset": self.dataset, "items": len(self.items), "sessions": len(self.sessions),
                   "seconds_this_call": time.time() - started, **timings,
                   "peak_rss_mb": peak_rss_mb(), "threads": c["threads"],
                   "features": {k: str(v) for k, v in paths.items()}, "work_dir": str(self.work_dir),
                   "versions": library_versions()}
        (self.work_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return paths

    def write_features(self):
        c = self.config
        with torch.no_grad():
            h_k = self.encode_all("knowledge", "z_U") if c["use_stage2"] else None
            views = {"zK": self.z_k1}
            if c["use_stage2"]:
                views["zU"] = self.objectives.features(h_k, "zU")
                views["zT"] = self.objectives.features(self.encode_all("transfer", "z_T"), "zT")
            else:
                views["zU"] = self.z_k1  # ablation: no stage 2, z_U is the stage-1 knowledge
        producer = {"name": "tpad-pretrainer", "version": PRETRAINER_VERSION, "config": c,
                    "backbone": self.backbone.identity(),
                    "work_dir": str(self.work_dir)}
        paths = {}
        ids = [item.item_id for item in self.items]
        for view, tensor in views.items():
            paths[view] = write_feature_file(feature_path(self.data_dir, self.dataset, view, c["feature_prefix"]),
                                             tensor.float().numpy(), ids, self.dataset, self.data_dir,
                                             {**producer, "view": view})
        return paths


def pretrain(dataset, config_file_list=None, config_dict=None, backbone=None, interrupt_at=None):
    """Python API of ``--stage=pretrain``: returns ``{view: feature file}`` (zU, zK, zT)."""
    config = pretrain_config(dataset, config_file_list, config_dict)
    return Pretrainer(dataset, config, backbone=backbone).run(interrupt_at=interrupt_at)
