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
This module is the loop; its settings are :mod:`recbole_tpad.distill.settings`, what it keeps
on disk :mod:`recbole_tpad.distill.state`. It never imports RecBole's trainer: it is its own stage.
"""

import contextlib
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.nn import functional as F

from recbole_tpad.data.features import library_versions, write_feature_file
from recbole_tpad.distill import state
from recbole_tpad.distill.objectives import TransitionDistillation
from recbole_tpad.distill.sessions import training_sessions
from recbole_tpad.distill.teacher import load_teacher
from recbole_tpad.distill.settings import (LATER_SETTINGS, PRETRAINER_VERSION, PretrainConfigError,
                                           feature_path, features_current, pretrain_config,
                                           work_dir_for)
from recbole_tpad.mllm.backbone import LoraSettings
from recbole_tpad.mllm.prompts import ItemContent, dataset_items, length_batches
from recbole_tpad.runtime import machine_description, peak_rss_mb, progress


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

        # a run's config from before a setting existed (a feature file's producer) was made
        # with that setting's earlier value: filled in, the work folder's key is unchanged
        self.config = {**LATER_SETTINGS, **config}
        self.dataset = dataset
        self.data_dir = Path(data_dir) if data_dir else ensure_dataset(dataset, config["data_path"])
        self.items = dataset_items(self.data_dir, dataset, images=config["use_images"])
        if not self.items:
            raise PretrainConfigError(f"{self.data_dir / (dataset + '.item')} is missing or empty: "
                                      "the pretrainer needs item text and/or images. TPAD reads the pretrainer's "
                                      "features by default; --use_features=False trains it on item ids alone")
        self.index = {item.item_id: i for i, item in enumerate(self.items)}
        sessions = training_sessions(self.data_dir, dataset)
        self.sessions = [s for s in ([self.index[i] for i in session if i in self.index]
                                     for session in sessions) if len(s) >= 2]
        self._backbone = backbone
        self.writer = None
        self.work_dir = self._work_dir()
        self.log_rows = []
        self.lower = None  # the items' cached lower-layer states (split-forward backbones)

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
        self.device = torch.device(c["device"])
        backbone = (self._backbone or load_backbone(c["backbone"])).to(self.device)
        self.n_layers = backbone.n_layers
        top = c["lora_top_layers"]
        self.upto = 0 if top is None else max(0, self.n_layers - int(top))
        # where a step's forward starts: above the cached frozen layers (split forward), or at
        # the input embeddings (a backbone without one runs its full forward every step)
        self.cache_depth = self.upto if backbone.split_forward else 0
        backbone.add_adapters(LoraSettings(rank=c["lora_rank"], alpha=c["lora_alpha"],
                                           lora_layers=list(range(self.upto, self.n_layers))))
        self.backbone = backbone
        self.teacher = None
        if c["transition_teacher"]:
            vectors, known = load_teacher(c, self.data_dir, self.dataset,
                                          [item.item_id for item in self.items])
            self.teacher = (torch.from_numpy(vectors).to(self.device),
                            torch.from_numpy(known).to(self.device))
        self.objectives = TransitionDistillation(backbone.hidden_size, c["z_dim"],
                                                 c["estimator_hidden"], c["temperature"],
                                                 c["session_query"],
                                                 None if self.teacher is None else self.teacher[0].shape[1]
                                                 ).to(self.device)
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
    def optimizers(self):
        return {name: getattr(self, name) for name in state.OPTIMIZERS}

    def save_checkpoint(self, stage, step):
        state.save_checkpoint(self.work_dir / "checkpoint.pt", stage, step, self.backbone,
                              self.objectives, self.optimizers(), self.rng, self.log_rows,
                              getattr(self, "clock", None))

    def load_checkpoint(self):
        """Restore the checkpoint, if any; ``(stage, step)``. The run's clock so far is kept as
        ``self.earlier_seconds`` (see :class:`state.RunClock`)."""
        stage, step, self.log_rows, self.earlier_seconds = state.load_checkpoint(
            self.work_dir / "checkpoint.pt", self.backbone, self.objectives, self.optimizers(),
            self.rng)
        return stage, step

    # ------------------------------------------------------------------ logging
    def log(self, stage, step, values):
        row = {"stage": stage, "step": step, **{k: float(v) for k, v in values.items()}}
        self.log_rows.append(row)
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{stage}/{key}", float(value), step)

    # ------------------------------------------------------------------ stage 1
    def stage1_step(self):
        c = self.config
        batch = self.rng.choice(len(self.items), size=min(c["stage1_batch"], len(self.items)),
                                replace=False)
        pairs = [masked_span(self.items[i], self.rng, c["mask_ratio"]) for i in batch]
        with self.autocast():
            loss = self.backbone.generation_loss([p[0] for p in pairs], [p[1] for p in pairs],
                                                 prompt=c["generate_prompt"], adapter="knowledge")
        self.opt1.zero_grad()
        loss.backward()
        self.opt1.step()
        return {"gen": loss.item()}

    # ------------------------------------------------------------------ lower layers
    def lower_state_cache(self):
        return state.LowerStateCache(self.config["checkpoint_dir"], self.backbone,
                                     self.config["encode_prompt"], self.cache_depth, self.items,
                                     self.config["precision"])

    def read_lengths(self, rows):
        """Sort keys of how long items ``rows`` are to read (exact under the split forward)."""
        if self.lower is not None:
            return [self.lower[r].shape[0] for r in rows]
        return self.backbone.read_lengths([self.items[r] for r in rows], self.config["encode_prompt"])

    def encode(self, rows, adapter):
        """States of items ``rows`` (in that order), in length-sorted batches of ``encode_batch``."""
        rows = list(rows)
        batches = length_batches(self.read_lengths(rows), self.config["encode_batch"])
        parts = [self.encode_batch([rows[b] for b in batch], adapter) for batch in batches]
        order = torch.tensor([b for batch in batches for b in batch], device=parts[0].device)
        return torch.cat(parts)[torch.argsort(order)]

    def encode_batch(self, rows, adapter):
        """States of items ``rows`` in one padded batch."""
        pooling = self.config["item_pooling"]
        if self.lower is None:  # no split forward: the full forward of the items' prompts
            return self.backbone.encode([self.items[r] for r in rows], self.config["encode_prompt"],
                                        adapter, pooling)
        return self.backbone.encode_from_lower([self.lower[r].to(self.device, torch.float32) for r in rows],
                                               self.upto, adapter, pooling)

    def encode_contents(self, contents, adapter):
        """States of items outside the run's catalogue (items added after training), by the path
        :meth:`encode` takes for the catalogue: the frozen lower layers rounded to fp16 as the
        cache holds them, then the adapter's layers; or the full forward without a split."""
        prompt, pooling = self.config["encode_prompt"], self.config["item_pooling"]
        if not self.backbone.split_forward:
            return self.backbone.encode(contents, prompt, adapter, pooling)
        lower = self.backbone.lower_states(contents, prompt, self.upto)
        return self.backbone.encode_from_lower(
            [s.to(torch.float16).to(self.device, torch.float32) for s in lower], self.upto, adapter,
            pooling)

    def encode_all(self, adapter, desc):
        """Every item's state under ``adapter``, in item order."""
        everything = range(len(self.items))
        out = [None] * len(self.items)
        with torch.no_grad(), self.autocast():
            for rows in progress(length_batches(self.read_lengths(everything), self.config["encode_batch"]),
                                 desc=desc, show=self.config["show_progress"]):
                for r, hidden in zip(rows, self.encode_batch(rows, adapter)):
                    out[r] = hidden
        return torch.stack(out).float()

    def autocast(self):
        """bf16 autocast on a GPU (``precision: bf16``); nothing on fp32 runs."""
        if self.config["precision"] == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ stage 2
    def sample_sessions(self):
        """A batch of (prefix, next item): sessions drawn uniformly, a cut drawn uniformly, the
        window of ``max_prefix`` items before it; the cut's item is the target, and under
        ``stage2_targets: every`` so is each later item of the window, given the ones before it
        (targets follow :func:`~recbole_tpad.distill.sessions.target_distribution`)."""
        c = self.config
        picks = self.rng.choice(len(self.sessions), size=min(c["stage2_batch"], len(self.sessions)),
                                replace=False)
        prefixes, targets = [], []
        for p in picks:
            session = self.sessions[p]
            cut = int(self.rng.integers(1, len(session)))
            start = max(0, cut - c["max_prefix"])
            for position in range(start + 1 if c["stage2_targets"] == "every" else cut, cut + 1):
                prefixes.append(session[start:position])
                targets.append(session[position])
        return prefixes, targets

    def target_window(self):
        """How many positions up to a cut are targets (:func:`target_distribution`'s window)."""
        return self.config["max_prefix"] if self.config["stage2_targets"] == "every" else 1

    def session_states(self, prefix_rows, h_t):
        """Transfer-MLLM over the prefix items as soft tokens (top layers, ``transfer`` adapter)."""
        soft = [self.objectives.soft_token(h_t[rows]) for rows in prefix_rows]
        return self.backbone.encode_from_lower(soft, self.cache_depth, "transfer")

    def stage2_step(self):
        with self.autocast():
            loss, out = self.stage2_losses()
        self.opt2.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.opt2.param_groups[0]["params"], 1.0)
        self.opt2.step()
        # CLUB's q is fitted on the same pairs, in alternation with the main loss
        with self.autocast():
            club = self.objectives.club_fit_loss(out["pairs"])
        self.opt_club.zero_grad()
        club.backward()
        self.opt_club.step()
        keys = ("next", "hmie_item", "hmie_session", "amie_t", "amie_k", "teacher", "gen")
        return {"loss": loss.item(), "club_fit": club.item(),
                **{k: out[k].item() for k in keys if k in out}}

    def stage2_losses(self):
        """One batch of training sessions: the total stage-2 loss and its terms."""
        c = self.config
        device = self.device
        prefixes, targets = self.sample_sessions()
        unique = sorted({i for p in prefixes for i in p} | set(targets))
        row = {item: r for r, item in enumerate(unique)}
        h_t = self.encode(unique, "transfer")
        h_k = self.encode(unique, "knowledge")
        z_k1 = self.z_k1[unique]
        prefix_rows = [torch.tensor([row[i] for i in p], device=device) for p in prefixes]
        width = max(len(p) for p in prefixes)
        prefix_index = torch.zeros(len(prefixes), width, dtype=torch.long, device=device)
        prefix_mask = torch.zeros(len(prefixes), width, dtype=torch.bool, device=device)
        for b, rows in enumerate(prefix_rows):
            prefix_index[b, :len(rows)] = rows
            prefix_mask[b, :len(rows)] = True
        session = self.session_states(prefix_rows, h_t)
        teacher = (None, None) if self.teacher is None else (self.teacher[0][unique], self.teacher[1][unique])
        out = self.objectives.losses(h_t, h_k, z_k1, session, prefix_index, prefix_mask,
                                     torch.tensor([row[t] for t in targets], device=device),
                                     use_hmie=c["use_hmie"], use_amie=c["use_amie"],
                                     lambda_keep=c["lambda_keep"], teacher=teacher[0],
                                     teacher_known=teacher[1])
        loss = out["next"] + c["alpha_hmie"] * out["hmie"] + c["beta_amie"] * out["amie"]
        if "teacher" in out:
            loss = loss + c["teacher_weight"] * out["teacher"]
        if c["use_generation"] and c["gamma_gen"] > 0:
            chosen = self.rng.choice(unique, size=min(c["gen_items"], len(unique)), replace=False)
            pairs = [masked_span(self.items[i], self.rng, c["mask_ratio"]) for i in chosen]
            out["gen"] = self.backbone.generation_loss([p[0] for p in pairs], [p[1] for p in pairs],
                                                       prompt=c["generate_prompt"], adapter="knowledge")
            loss = loss + c["gamma_gen"] * out["gen"]
        return loss, out

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
        """Pretrain (or resume) and write the feature files; returns ``{view: path}``. One
        process at a time in a work folder (:mod:`recbole_tpad.folder_lock`)."""
        from recbole_tpad.folder_lock import FolderBusy, hold_folder

        c = self.config
        if features_current(self.dataset, c, self.data_dir):
            # a finished run: its features and summary.json stay as they are
            return {view: feature_path(self.data_dir, self.dataset, view, c["feature_prefix"])
                    for view in ("zU", "zK", "zT")}
        try:
            with hold_folder(self.work_dir, f"pretraining {self.dataset}"):
                return self._run(interrupt_at)
        except FolderBusy as error:
            raise PretrainConfigError(f"not pretraining: {error}") from None

    def _run(self, interrupt_at):
        from torch.utils.tensorboard import SummaryWriter

        c = self.config
        started = time.time()
        threads = torch.get_num_threads()
        torch.set_num_threads(c["threads"])
        try:
            self._build()
            stage, step = self.load_checkpoint()
            resumed_at = None if stage is None else f"{stage} step {step}"
            self.clock = clock = state.RunClock(self.earlier_seconds, started, c["threads"])
            self.writer = SummaryWriter(str(self.work_dir / "tensorboard"))
            order = ["stage1", "stage2", "done"]
            if stage is None:
                stage, step = "stage1", 0
            elif stage != "done" and step >= c[f"{stage}_steps"]:
                stage, step = order[order.index(stage) + 1], 0
            with clock.part("stage1_s"):
                if stage == "stage1" and c["use_generation"]:
                    self._loop("stage1", c["stage1_steps"], self.stage1_step, step, interrupt_at)
                if stage == "stage1":
                    stage, step = "stage2", 0
            if self.backbone.projector is not None:  # fixed from here: lower states stay valid
                self.backbone.projector.requires_grad_(False)

            with clock.part("lower_states_s"):
                self.load_lower_states()
            with clock.part("z_k1_s"):
                self.load_stage1_knowledge()

            with clock.part("stage2_s"):
                if stage == "stage2" and c["use_stage2"]:
                    if not self.sessions:
                        raise PretrainConfigError(f"{self.dataset}: no training session of 2+ known items")
                    self._loop("stage2", c["stage2_steps"], self.stage2_step, step, interrupt_at)
            self.save_checkpoint("done", 0)

            with clock.part("features_s"):
                paths, h_t = self.write_features()
            held_out = self.held_out_report(h_t) if h_t is not None else None
            if held_out:
                print(f"held-out next-item Recall@20 on {held_out['cases']} validation cases: "
                      f"Transfer-MLLM {held_out['transfer_recall@20']:.4f} (score alone "
                      f"{held_out['transfer_pmi_recall@20']:.4f}; last item's z_T alone "
                      f"{held_out['last_item_recall@20']:.4f}), popularity "
                      f"{held_out['popularity_recall@20']:.4f}, ID transition counts "
                      f"{held_out['markov_recall@20']:.4f}"
                      + (f", the teacher's last item {held_out['teacher_recall@20']:.4f}"
                         if "teacher_recall@20" in held_out else ""), flush=True)
        finally:
            torch.set_num_threads(threads)
            if getattr(self, "writer", None) is not None:
                self.writer.close()
        state.plot_curves(self.log_rows, self.work_dir / "curves.png")
        summary = {"dataset": self.dataset, "items": len(self.items), "sessions": len(self.sessions),
                   "seconds_this_call": time.time() - started, "resumed_at": resumed_at,
                   # every call's parts and total when the checkpoint kept the clock, else this call's
                   **(clock.totals() or {**clock.this_call, "total_s": None, "calls": None}),
                   "peak_rss_mb": peak_rss_mb(), "threads": c["threads"],
                   "machine": machine_description(self.device),
                   "held_out": held_out,
                   "features": {k: str(v) for k, v in paths.items()}, "work_dir": str(self.work_dir),
                   "versions": library_versions()}
        (self.work_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        return paths

    def write_features(self):
        """Write the views; returns ``(paths, transfer states of every item or None)``."""
        c = self.config
        h_t = None
        with torch.no_grad():
            h_k = self.encode_all("knowledge", "z_U") if c["use_stage2"] else None
            views = {"zK": self.z_k1}
            if c["use_stage2"]:
                views["zU"] = self.objectives.features(h_k, "zU")
                h_t = self.encode_all("transfer", "z_T")
                views["zT"] = self.objectives.features(h_t, "zT")
            else:
                views["zU"] = self.z_k1  # ablation: no stage 2, z_U is the stage-1 knowledge
        producer = {"name": "tpad-pretrainer", "version": PRETRAINER_VERSION, "config": c,
                    "backbone": self.backbone.identity(),
                    "work_dir": str(self.work_dir)}
        paths = {}
        ids = [item.item_id for item in self.items]
        for view, tensor in views.items():
            paths[view] = write_feature_file(feature_path(self.data_dir, self.dataset, view, c["feature_prefix"]),
                                             tensor.float().cpu().numpy(), ids, self.dataset, self.data_dir,
                                             {**producer, "view": view})
        return paths, h_t

    def load_lower_states(self):
        """The frozen lower layers' states of every item, from their cache (computed once), under
        the run's precision like every other pass; ``None`` for a backbone without a split forward."""
        c = self.config
        with self.autocast():
            self.lower = self.lower_state_cache().load_or_compute(c["encode_batch"], c["show_progress"]) \
                if self.backbone.split_forward else None

    def load_stage1_knowledge(self):
        """Stage 1's z_K of every item (computed once after stage 1 and kept in the work folder),
        which also fixes the heads' standardisation."""
        z_k1_path = self.work_dir / "z_k_stage1.pt"
        if z_k1_path.is_file():
            self.z_k1 = torch.load(z_k1_path, weights_only=True, map_location=self.device)
        else:
            self.z_k1 = self.encode_all("knowledge", "stage-1 z_K")
            torch.save(self.z_k1, z_k1_path)
        with torch.no_grad():
            self.objectives.set_standardization(self.z_k1)

    def reread_held_out(self, max_cases=None):
        """A finished run's held-out report again, on ``max_cases`` validation cases (``None``:
        all of them), from its checkpoint: the transfer states are encoded again and nothing is
        written. ``None`` for a run without stage 2."""
        self._build()
        stage, _ = self.load_checkpoint()
        if stage != "done":
            raise PretrainConfigError(f"{self.work_dir}: the pretraining run has not finished; finish it "
                                      "first (run --stage=pretrain again with the same settings)")
        if not self.config["use_stage2"]:
            return None
        self.load_lower_states()
        self.load_stage1_knowledge()
        with torch.no_grad():
            h_t = self.encode_all("transfer", "z_T")
        return self.held_out_report(h_t, max_cases=max_cases)

    @torch.no_grad()
    def held_out_report(self, h_t, k=20, max_cases=2000):
        """Does the Transfer-MLLM predict next items? On the validation split's cases (never
        the test split; the first ``max_cases``, or all with ``None``), the next item is ranked
        among all items and its Recall@``k`` is set beside that of ranking by popularity (by q,
        below).

        The Transfer-MLLM's ranking is its estimate of p(next | prefix): the stage-2 score
        (the prefix read as soft tokens by the transfer adapter, against every item's z_T) plus
        log q, q being how often stage 2 drew the item as a target, because in-batch InfoNCE
        learns the score minus log q (:meth:`TransitionDistillation.next_item_scores`). The
        score alone (``transfer_pmi_recall@k``) is reported too. Popularity ranks by q itself, so
        the ratio says what reading the session adds to that same prior. ``last_item_recall@k``
        ranks by the last prefix item's own z_T (cosine / temperature, plus log q), no session
        state: what the Transfer-MLLM's reading of the session adds beyond that content.
        ``markov_recall@k`` ranks by how often each item followed the last prefix item in the
        training sessions (ties by q): what memorising transitions by item ID gives, no content.
        With a ``transition_teacher``, ``teacher_recall@k`` ranks by the last prefix item's
        teacher vector, as ``last_item`` by its z_T: what the teacher offers to learn."""
        from recbole_tpad.distill.sessions import (target_distribution, transition_counts,
                                                   validation_cases)

        c = self.config
        cases = [([self.index[i] for i in prefix if i in self.index], self.index.get(target))
                 for prefix, target in validation_cases(self.data_dir, self.dataset, c["max_prefix"])]
        cases = [(p, t) for p, t in cases if p and t is not None][:max_cases]
        if not cases:
            return None
        q = target_distribution(self.sessions, len(self.items), self.target_window())
        q = np.maximum(q, q[q > 0].min() / 2)  # an item never drawn as a target: half the rarest
        log_q = torch.as_tensor(np.log(q), dtype=torch.float32, device=self.device)
        popular = set(log_q.topk(min(k, len(self.items))).indices.tolist())
        h_t = h_t.to(self.device)
        z_t = self.objectives.features(h_t, "zT").float()
        follows = transition_counts(self.sessions, len(self.items))
        hits = {"transfer": 0, "transfer_pmi": 0, "last_item": 0, "markov": 0}
        teacher = None
        if self.teacher is not None:
            teacher = F.normalize(self.teacher[0].float(), dim=-1)
            hits["teacher"] = 0
        with self.autocast():
            for start in range(0, len(cases), c["encode_batch"]):
                chunk = cases[start:start + c["encode_batch"]]
                session = self.session_states([torch.tensor(p, device=self.device) for p, _ in chunk], h_t)
                last = torch.tensor([p[-1] for p, _ in chunk], device=self.device)
                query = self.objectives.query(session.float(), z_t[last])
                scores = self.objectives.next_item_scores(query, z_t)
                content = self.objectives.next_item_scores(z_t[last], z_t, log_q)
                # log q / 1000 only orders the items a count leaves tied (|log q| < 1000 here)
                markov = torch.as_tensor(follows[last.tolist()].toarray(), dtype=torch.float32,
                                         device=self.device) + log_q / 1000
                targets = torch.tensor([t for _, t in chunk], device=self.device).unsqueeze(1)
                rankings = [("transfer", scores + log_q), ("transfer_pmi", scores),
                            ("last_item", content), ("markov", markov)]
                if teacher is not None:
                    rankings.append(("teacher", self.objectives.next_item_scores(teacher[last], teacher, log_q)))
                for name, ranked in rankings:
                    top = ranked.topk(min(k, len(self.items)), dim=-1).indices
                    hits[name] += int((top == targets).any(1).sum())
        recall = {f"{name}_recall@{k}": n / len(cases) for name, n in hits.items()}
        pop = sum(t in popular for _, t in cases) / len(cases)
        return {"cases": len(cases), **recall, f"popularity_recall@{k}": pop,
                "ratio_to_popularity": recall[f"transfer_recall@{k}"] / pop if pop else None}


def pretrain(dataset, config_file_list=None, config_dict=None, backbone=None, interrupt_at=None):
    """Python API of ``--stage=pretrain``: returns ``{view: feature file}`` (zU, zK, zT)."""
    config = pretrain_config(dataset, config_file_list, config_dict)
    return Pretrainer(dataset, config, backbone=backbone).run(interrupt_at=interrupt_at)
