"""What a pretraining run keeps on disk, none of it pickled: its checkpoint (adapters through
peft's per-adapter state dicts, heads, estimators, optimizers, random states, the loss log, the
seconds spent so far), the frozen lower layers' states of every item (a cache shared by every
run that agrees on them), and the loss curves (JSONL rows in the checkpoint, TensorBoard, a PNG).
"""

import hashlib
import json
import random
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from recbole_tpad.checkpoints import rng_state, set_rng_state
from recbole_tpad.distill.settings import PRETRAINER_VERSION, PretrainConfigError
from recbole_tpad.mllm.prompts import length_batches
from recbole_tpad.runtime import progress

def items_checksum(items):
    """SHA-256 of the items in order: ids, texts and image bytes."""
    digest = hashlib.sha256()
    for item in items:
        image = hashlib.sha256(Path(item.image).read_bytes()).hexdigest() if item.image else "-"
        digest.update(json.dumps([item.item_id, item.text, image]).encode())
    return digest.hexdigest()


#: The optimizers a checkpoint holds, by name (the pretrainer's attributes of the same names).
OPTIMIZERS = ("opt1", "opt2", "opt_club")


class RunClock:
    """Seconds a pretraining run has spent, per part and in all, over every call that worked on
    it. The checkpoint keeps the totals, so a resumed run reports its whole cost, not only its
    last call's: each earlier call counts up to its last checkpoint (work it did after that is
    redone, and counted, by the call that resumes)."""

    PARTS = ("stage1_s", "lower_states_s", "z_k1_s", "stage2_s", "features_s")

    def __init__(self, earlier, started=None, threads=None):
        #: the totals the checkpoint held, ``{}`` for a new run, None for a checkpoint written
        #: before runs kept them (its earlier calls' time is unknown)
        self.earlier = earlier
        self.started = time.time() if started is None else started
        #: this call's torch threads: kept per call, since a run resumed with another count
        #: writes other features (CPU kernels sum in another order)
        self.threads = threads
        self.this_call = {}
        self._running = None

    @contextmanager
    def part(self, name):
        """Time one part of this call."""
        self._running = (name, time.time())
        try:
            yield
        finally:
            self.this_call[name] = self.this_call.get(name, 0.0) + time.time() - self._running[1]
            self._running = None

    def _this_call_so_far(self):
        seconds = dict(self.this_call)
        if self._running:
            name, tic = self._running
            seconds[name] = seconds.get(name, 0.0) + time.time() - tic
        return seconds

    def totals(self):
        """``{part: seconds, "total_s": ..., "calls": n, "threads_by_call": [...]}`` over every
        call so far, or None when the earlier calls' time is unknown."""
        if self.earlier is None:
            return None
        now = self._this_call_so_far()
        totals = {k: float(self.earlier.get(k, 0.0)) + now.get(k, 0.0) for k in self.PARTS}
        totals["total_s"] = float(self.earlier.get("total_s", 0.0)) + time.time() - self.started
        totals["calls"] = int(self.earlier.get("calls", 0)) + 1
        before = self.earlier.get("threads_by_call") or [None] * (totals["calls"] - 1)  # None: not kept
        totals["threads_by_call"] = list(before) + [self.threads]
        return totals


def save_checkpoint(path, stage, step, backbone, objectives, optimizers, rng, log_rows, clock=None):
    """Everything that trains, the optimizers, every random state and the run's clock
    (:class:`RunClock`), written atomically."""
    from peft import get_peft_model_state_dict

    host = backbone.lora_host()  # peft's own per-adapter state, not a name filter
    lora = {adapter: {k: v.detach().clone() for k, v in
                      get_peft_model_state_dict(host, adapter_name=adapter).items()}
            for adapter in backbone.adapter_names()}
    state = {"stage": stage, "step": step, "lora": lora, "extra": backbone.extra_state(),
             "objectives": objectives.state_dict(),
             **{name: optimizers[name].state_dict() for name in OPTIMIZERS},
             "rng": rng.bit_generator.state, "global_rng": rng_state(), "log": log_rows}
    totals = clock.totals() if clock is not None else None
    if totals is not None:
        state["seconds"] = totals
    partial = Path(str(path) + ".part")
    torch.save(state, partial)
    partial.replace(path)


def load_checkpoint(path, backbone, objectives, optimizers, rng):
    """Restore a checkpoint into the given parts; ``(stage, step, log_rows, seconds)``, or
    ``(None, 0, [], {})`` when there is none yet. ``seconds`` is the run's clock so far
    (:meth:`RunClock.totals`), None for a checkpoint written before runs kept one."""
    path = Path(path)
    if not path.is_file():
        return None, 0, [], {}
    state = torch.load(path, weights_only=True, map_location="cpu")  # tensors, numbers, lists: no pickle
    from peft import set_peft_model_state_dict

    for adapter, weights in state["lora"].items():
        result = set_peft_model_state_dict(backbone.lora_host(), weights, adapter_name=adapter)
        if getattr(result, "unexpected_keys", None):
            raise PretrainConfigError(f"{path}: adapter {adapter!r} holds weights this backbone "
                                      f"does not have ({result.unexpected_keys[:3]}); delete the "
                                      "work folder to start over")
    if state["extra"]:
        backbone.load_extra_state(state["extra"])
    objectives.load_state_dict(state["objectives"])
    for name in OPTIMIZERS:
        optimizers[name].load_state_dict(state[name])
    rng.bit_generator.state = state["rng"]
    if "global_rng" in state:
        set_rng_state(state["global_rng"])
    else:  # written before the trainer's and the pretrainer's checkpoints shared rng_state
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        random.setstate(state["python_rng"])
    return state["stage"], state["step"], state["log"], state.get("seconds")


class LowerStateCache:
    """The frozen layers ``0:upto`` of every item's encode prompt, computed once, in resumable
    chunks (fp16). One folder per (backbone weights incl. the fixed projector, encode prompt,
    depth, item contents, and the precision they are computed in: bf16 states are not fp32
    ones rounded), shared by every run that agrees on those (ablations, and datasets derived
    from one another, such as ``X-session``): they depend on nothing a run trains after stage 1."""

    def __init__(self, root, backbone, encode_prompt, upto, items, precision="fp32"):
        self.backbone, self.encode_prompt, self.upto, self.items = backbone, encode_prompt, upto, items
        parts = [PRETRAINER_VERSION, backbone.fingerprint(), encode_prompt, upto, items_checksum(items)]
        if precision != "fp32":  # absent on fp32, so the caches made before it keep their folders
            parts.append(precision)
        key = json.dumps(parts, sort_keys=True, default=str)
        self.folder = Path(root).resolve() / "pretrain" / "lower-states" / \
            hashlib.sha256(key.encode()).hexdigest()[:12]

    def load_or_compute(self, encode_batch, show_progress=True, chunk=1024):
        self.folder.mkdir(parents=True, exist_ok=True)
        states = []
        bar = progress(total=len(self.items), desc="lower layers (once)", unit="item",
                       show=show_progress)
        for start in range(0, len(self.items), chunk):
            path = self.folder / f"chunk-{start // chunk:05d}.pt"
            if path.is_file():
                part = torch.load(path, weights_only=True, map_location="cpu")
            else:
                items = self.items[start:start + chunk]
                part = [None] * len(items)
                with torch.no_grad():
                    for rows in length_batches(self.backbone.read_lengths(items, self.encode_prompt),
                                               encode_batch):
                        batch = self.backbone.lower_states([items[r] for r in rows],
                                                           self.encode_prompt, self.upto)
                        for r, s in zip(rows, batch):
                            part[r] = s.to(torch.float16).cpu().clone()
                tmp = path.with_suffix(".part")
                torch.save(part, tmp)
                tmp.replace(path)
            states += part
            bar.update(len(part))
        bar.close()
        return states


def plot_curves(log_rows, path):
    """The run's losses and estimator bounds in four panels (``curves.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("stage1", ["gen"]), ("stage2", ["next", "gen"]),
              ("stage2", ["hmie_item", "hmie_session"]), ("stage2", ["amie_t", "amie_k"])]
    titles = ["stage 1: generation loss", "stage 2: next-item and generation losses",
              "HMIE: CLUB upper bounds (nats)", "AMIE: InfoNCE lower bounds (nats)"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.4))
    for ax, (stage, keys), title in zip(axes, panels, titles):
        rows = [r for r in log_rows if r["stage"] == stage]
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
