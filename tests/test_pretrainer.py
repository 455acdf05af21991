"""The TPAD pretrainer on a tiny random backbone and tiny data: end to end into TPAD, resume
after an interruption (same features as an uninterrupted run), ablations, no split leakage."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset_tools.demo import generate_demo
from recbole_tpad.data.features import read_metadata
from recbole_tpad.distill.pretrainer import Pretrainer, pretrain
from recbole_tpad.distill.settings import PretrainConfigError, feature_path, pretrain_config
from recbole_tpad.distill.sessions import target_distribution, training_sessions, transition_counts
from recbole_tpad.mllm.offline import ComposedMLLM
from recbole_tpad.mllm.prompts import length_batches
from recbole_tpad.mllm.tiny import TinyImageTokens, build_tiny_llm


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("llm") / "llm")


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    """A small demo with images (128 items, 300 sessions)."""
    root = tmp_path_factory.mktemp("pt")
    generate_demo(root / "demo", items_per_category=8, n_sessions=300, images=True)
    return root


def settings(root, saved, **extra):
    values = dict(data_path=str(root), checkpoint_dir=str(saved), stage1_steps=4, stage2_steps=6,
                  checkpoint_every=2, show_progress=False, threads=1, lora_top_layers=2,
                  stage2_batch=16)
    return {**values, **extra}


def backbone(folder):
    return ComposedMLLM(folder, TinyImageTokens())


def test_tiny_pretrain_writes_feature_files_that_tpad_trains_on(tiny_llm, image_root, tmp_path,
                                                                 monkeypatch):
    paths = pretrain("demo", config_dict=settings(image_root, tmp_path / "saved"),
                     backbone=backbone(tiny_llm))
    assert set(paths) == {"zU", "zK", "zT"}
    for view, path in paths.items():
        meta = read_metadata(path)
        array = np.load(path)
        assert meta["producer"]["name"] == "tpad-pretrainer" and meta["producer"]["view"] == view
        assert meta["producer"]["config"]["stage2_steps"] == 6 and meta["n_items"] == 128
        assert np.isfinite(array).all() and array.std(0).mean() > 0
    assert np.load(paths["zU"]).shape == (128, 128) and np.load(paths["zK"]).shape == (128, 64)
    # the defaults (issue 13): the last item's query and the transition teacher, written on first use
    made_with = read_metadata(paths["zU"])["producer"]["config"]
    assert made_with["session_query"] == "last_item" and made_with["transition_teacher"] == "teacher-transitions"
    assert (image_root / "demo" / "demo.teacher-transitions.npy").is_file()
    work = next((tmp_path / "saved" / "pretrain").glob("demo-*"))
    assert (work / "curves.png").stat().st_size > 10_000 and list((work / "tensorboard").iterdir())

    from recbole_tpad.quick_start import run

    monkeypatch.chdir(tmp_path)
    result = run("TPAD", "demo", config_dict={
        "data_path": str(image_root), "checkpoint_dir": str(tmp_path / "saved"), "epochs": 3,
        "feature_source": "tpad-zU", "show_progress": False, "train_batch_size": 256,
        "embedding_size": 16, "inner_size": 32, "state": "WARNING"})
    random_ndcg = 10 / 128 * 0.4  # a random ranking of 128 items: NDCG@10 under 10/n
    assert result["test_result"]["ndcg@10"] > 2 * random_ndcg, result["test_result"]

    # an item added after training is encoded by the same backbone, adapters and heads
    from dataset_tools.atomic import read_item_table
    from recbole_tpad.recommend import Recommender

    rec = Recommender.from_checkpoint(result["saved_model_file"])
    original = rec.id_to_token[7]
    record = read_item_table(image_root / "demo", "demo")[original]  # every field, image too
    record["image"] = str(image_root / "demo" / record["image"])
    header = (image_root / "demo" / "demo.item").read_text().splitlines()[0]
    new_items = tmp_path / "new.item"
    new_items.write_text(header + "\n" + "\t".join(["copy", *record.values()]) + "\n")
    rec.add_items(new_items, backbone=backbone(tiny_llm))
    features = rec.model.item_features
    assert torch.nn.functional.cosine_similarity(features[-1], features[7], dim=0) > 0.999


def test_an_interrupted_pretrain_resumes_and_ends_with_the_same_features(tiny_llm, image_root,
                                                                        tmp_path, monkeypatch):
    straight = pretrain("demo", config_dict=settings(image_root, tmp_path / "a"),
                        backbone=backbone(tiny_llm))
    expected = {v: np.load(p) for v, p in straight.items()}
    straight_work = Path(read_metadata(straight["zU"])["producer"]["work_dir"])  # maybe an earlier test's
    for path in straight.values():  # else run b finds them current (same settings and data) and returns
        path.unlink()
    config = settings(image_root, tmp_path / "b")
    for stop in (("stage1", 3), ("stage2", 5)):
        with pytest.raises(KeyboardInterrupt):
            pretrain("demo", config_dict=config, backbone=backbone(tiny_llm), interrupt_at=stop)
    resumed = pretrain("demo", config_dict=config, backbone=backbone(tiny_llm))
    for view, path in resumed.items():
        assert np.allclose(np.load(path), expected[view], atol=1e-5), view
    work = next((tmp_path / "b" / "pretrain").glob("demo-*"))
    # the checkpoint kept the run's clock: the summary and report give every call's time, not
    # only the last call's (which resumed in stage 2 and ran no stage-1 step)
    from recbole_tpad.benchmark.pretrain_report import main as report

    summary = json.loads((work / "summary.json").read_text())
    assert summary["resumed_at"].startswith("stage2 step "), summary["resumed_at"]
    assert summary["calls"] == 3 and summary["total_s"] > summary["seconds_this_call"]
    assert summary["threads_by_call"] == [1, 1, 1]
    one_call = json.loads((straight_work / "summary.json").read_text())
    assert one_call["calls"] == 1 and one_call["resumed_at"] is None
    # the last call's own stage-1 part is microseconds (no step); the earlier calls' four steps
    # of the tiny model take about 0.1 s each
    assert summary["stage1_s"] > 0.02, summary
    assert report(["--dataset=demo", f"--out={tmp_path / 'results'}"]
                  + [f"--{k}={v}" for k, v in config.items()]) == 0
    text = (tmp_path / "results" / "pretrain-demo.md").read_text()
    assert f"| **total** | **{summary['total_s']:.0f}** " in text
    assert f"took 3 calls; the last resumed it at {summary['resumed_at']}" in text
    # where it ran, as the run recorded it (not a fixed "2-core CPU")
    assert f"torch thread{'' if summary['threads'] == 1 else 's'} on {summary['machine']}." in text
    assert f"{os.cpu_count()} cores" in summary["machine"]
    # a summary from before runs kept the clock: the resumed call's time is not called the total
    (work / "summary.json").write_text(json.dumps({**summary, "total_s": None, "calls": None}))
    assert report(["--dataset=demo", f"--out={tmp_path / 'results'}"]
                  + [f"--{k}={v}" for k, v in config.items()]) == 0
    text = (tmp_path / "results" / "pretrain-demo.md").read_text()
    assert "| **this call** |" in text and "| **total** |" not in text
    # the finished run's held-out report re-read from its checkpoint, on all its validation
    # cases (the run read all of them too: fewer than 2,000): the same report again; and on 7
    def reread(cases=None):
        run = Pretrainer("demo", pretrain_config("demo", config_dict=config), backbone=backbone(tiny_llm))
        return run.reread_held_out(cases)

    assert reread() == summary["held_out"]
    assert reread(7)["cases"] == 7
    # the report shows such a re-read as a second row (the real backbone is not this test's, so
    # the re-read is the one just checked)
    monkeypatch.setattr(Pretrainer, "reread_held_out", lambda self, cases: summary["held_out"])
    assert report(["--dataset=demo", f"--out={tmp_path / 'results'}", "--held_out_cases=0"]
                  + [f"--{k}={v}" for k, v in config.items()]) == 0
    text = (tmp_path / "results" / "pretrain-demo.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith(f"| {summary['held_out']['cases']} | ")]
    assert len(rows) == 2 and rows[0] == rows[1] and "--held_out_cases=0" in text, rows
    import torch

    log = torch.load(work / "checkpoint.pt", weights_only=True)["log"]
    assert [(r["stage"], r["step"]) for r in log] == \
        [("stage1", k) for k in range(1, 5)] + [("stage2", k) for k in range(1, 7)]
    # a checkpoint written before the pretrainer took its global random states from
    # recbole_tpad.checkpoints (its own three keys) still loads, and re-reads the same report
    import random

    state = torch.load(work / "checkpoint.pt", weights_only=True)
    del state["global_rng"]
    state.update(torch_rng=torch.get_rng_state(), cuda_rng=[], python_rng=random.getstate())
    torch.save(state, work / "checkpoint.pt")
    assert reread() == summary["held_out"]


@pytest.mark.slow
def test_a_killed_pretrain_process_resumes_from_its_checkpoint(tiny_llm, image_root, tmp_path):
    script = (
        "import sys; from recbole_tpad.mllm.offline import ComposedMLLM;"
        "from recbole_tpad.mllm.tiny import TinyImageTokens;"
        "from recbole_tpad.distill.pretrainer import pretrain;"
        f"pretrain('demo', config_dict=dict(data_path={str(image_root)!r}, checkpoint_dir={str(tmp_path)!r},"
        "stage1_steps=2, stage2_steps=400, checkpoint_every=5, show_progress=False, threads=1,"
        "lora_top_layers=2, stage2_batch=16), backbone=ComposedMLLM(sys.argv[1], TinyImageTokens()))")
    process = subprocess.Popen([sys.executable, "-c", script, str(tiny_llm)], cwd=tmp_path)
    deadline = time.time() + 120
    checkpoint = None
    while time.time() < deadline and process.poll() is None:
        found = list((tmp_path / "pretrain").glob("*/checkpoint.pt")) if (tmp_path / "pretrain").is_dir() else []
        if found:
            import torch

            try:
                state = torch.load(found[0], weights_only=True)
            except Exception:  # being replaced at this very moment
                state = {}
            if state.get("stage") == "stage2" and state["step"] >= 10:
                checkpoint = found[0]
                break
        time.sleep(0.2)
    assert checkpoint is not None and process.poll() is None, "no stage-2 checkpoint before the end"
    # a second pretraining of the same run while the first goes on is refused, not run twice
    with pytest.raises(PretrainConfigError, match=f"in use by process {process.pid} .*pretraining demo"):
        pretrain("demo", config_dict=dict(
            data_path=str(image_root), checkpoint_dir=str(tmp_path), stage1_steps=2, stage2_steps=400,
            checkpoint_every=5, show_progress=False, threads=1, lora_top_layers=2, stage2_batch=16),
            backbone=backbone(tiny_llm))
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    import torch

    killed_at = torch.load(checkpoint, weights_only=True)["step"]
    trainer = Pretrainer("demo", pretrain_config("demo", config_dict=dict(
        data_path=str(image_root), checkpoint_dir=str(tmp_path), stage1_steps=2, stage2_steps=400,
        checkpoint_every=5, show_progress=False, threads=1, lora_top_layers=2, stage2_batch=16)),
        backbone=backbone(tiny_llm))
    assert trainer.work_dir == checkpoint.parent
    trainer._build()
    stage, step = trainer.load_checkpoint()
    assert (stage, step) == ("stage2", killed_at) and len(trainer.log_rows) == 2 + killed_at


def test_ablation_switches(tiny_llm, image_root, tmp_path):
    no_stage2 = pretrain("demo", config_dict=settings(image_root, tmp_path, use_stage2=False),
                         backbone=backbone(tiny_llm))
    assert np.array_equal(np.load(no_stage2["zU"]), np.load(no_stage2["zK"]))
    for switch in ("use_hmie", "use_amie", "use_generation", "use_images"):
        paths = pretrain("demo", config_dict=settings(image_root, tmp_path / switch, **{switch: False}),
                         backbone=backbone(tiny_llm))
        assert read_metadata(paths["zU"])["producer"]["config"][switch] is False
    work = next((tmp_path / "use_hmie" / "pretrain").glob("demo-*"))
    import torch

    rows = torch.load(work / "checkpoint.pt", weights_only=True)["log"]
    assert all(r["hmie_item"] == 0 for r in rows if r["stage"] == "stage2")


def test_unknown_settings_are_refused():
    with pytest.raises(PretrainConfigError, match=r"unknown pretrain setting\(s\) \['stage3_steps'\]"):
        pretrain_config("demo", config_dict={"stage3_steps": 3})
    with pytest.raises(PretrainConfigError, match="item_pooling='max': use one of last, mean"):
        pretrain_config("demo", config_dict={"item_pooling": "max"})


@pytest.mark.parametrize("family", ["llava", "qwen2_vl"])
def test_hf_vision_language_models_pretrain_through_their_full_forward(family, image_root, tmp_path):
    """A LLaVA- or Qwen2-VL-family model (no split forward): both stages on its full forward,
    the features written; killed in stage 2, it resumes and ends with the same features."""
    from recbole_tpad.mllm.hf_vlm import HFVisionLanguageBackbone
    from recbole_tpad.mllm.tiny import build_tiny_llava, build_tiny_qwen2_vl

    folder = (build_tiny_llava if family == "llava" else build_tiny_qwen2_vl)(tmp_path / family)
    assert not HFVisionLanguageBackbone(folder).split_forward
    config = settings(image_root, tmp_path / "saved", stage2_steps=4, stage2_batch=8, lora_top_layers=1,
                      feature_prefix=f"tpad-{family}")  # its own files in the shared demo folder
    whole = pretrain("demo", config_dict=config, backbone=HFVisionLanguageBackbone(folder))
    zu = np.load(whole["zU"])
    assert zu.shape[0] == 128 and np.isfinite(zu).all() and zu.std(0).mean() > 0
    assert not list((tmp_path / "saved" / "pretrain").glob("lower-states/*"))  # no cache: full forward

    again = dict(config, checkpoint_dir=str(tmp_path / "again"), feature_prefix=f"tpad-{family}-again")
    with pytest.raises(KeyboardInterrupt):
        pretrain("demo", config_dict=again, backbone=HFVisionLanguageBackbone(folder),
                 interrupt_at=("stage2", 2))
    resumed = pretrain("demo", config_dict=again, backbone=HFVisionLanguageBackbone(folder))
    assert np.allclose(np.load(resumed["zU"]), zu, atol=1e-5)


def test_pretraining_sessions_never_hold_valid_or_test_targets(tmp_path, demo_root):
    # user histories under leave-one-out: the last two items of each user are held out
    folder = tmp_path / "loo"
    folder.mkdir()
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    histories = {"u1": ["a", "b", "c", "d", "e"], "u2": ["c", "a", "f"], "u3": ["x", "y", "z", "w"]}
    for user, items in histories.items():
        for t, item in reversed(list(enumerate(items))):  # file order is not time order
            lines.append(f"{user}\t{item}\t{t * 10}")
    (folder / "loo.inter").write_text("\n".join(lines) + "\n")
    assert training_sessions(folder, "loo") == [["a", "b", "c"], ["x", "y"]]  # u2 keeps 1 item
    # the held-out report reads the valid targets (second last), never the test ones (last)
    from recbole_tpad.distill.sessions import validation_cases

    assert validation_cases(folder, "loo") == [(["a", "b", "c"], "d"), (["c"], "a"), (["x", "y"], "z")]
    assert validation_cases(folder, "loo", max_prefix=1)[0] == (["c"], "d")

    # benchmark files: only the train file is read; no valid/test session appears
    keyed = training_sessions(demo_root / "demo", "demo", with_keys=True)
    from dataset_tools.atomic import read_atomic

    ids = {}
    for suffix in ("train", "valid", "test"):
        ids[suffix] = {r[0] for r in read_atomic(demo_root / "demo" / f"demo.{suffix}.inter")[1]}
    assert keyed and {k for k, _ in keyed} <= ids["train"]
    assert not {k for k, _ in keyed} & (ids["valid"] | ids["test"])
    assert all(len(s) >= 2 for _, s in keyed)


@pytest.mark.parametrize("targets", ["last", "every"])
def test_target_distribution_is_what_stage2_draws(image_root, tmp_path, targets):
    # a session drawn uniformly, then a cut: [0, 1, 2] gives 1 and 2 half its share each
    assert np.allclose(target_distribution([[0, 1, 2], [1, 3]], 5), [0, 0.25, 0.25, 0.5, 0])
    # every item of a 2-wide window up to the cut: item 1 is a target for both cuts of [0, 1, 2]
    assert np.allclose(target_distribution([[0, 1, 2], [1, 3]], 5, window=2), [0, 0.4, 0.2, 0.4, 0])
    # the held-out report's ID baseline: how often b directly followed a
    follows = transition_counts([[0, 1, 2], [1, 2], [2, 0]], 4).toarray()
    assert follows.tolist() == [[0, 1, 0, 0], [0, 0, 2, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    config = pretrain_config("demo", config_dict=settings(image_root, tmp_path, stage2_targets=targets))
    trainer = Pretrainer("demo", config)
    trainer.rng = np.random.default_rng(0)
    batches = [trainer.sample_sessions() for _ in range(1500)]
    for prefixes, batch_targets in batches[:50]:
        assert all(0 < len(p) <= config["max_prefix"] for p in prefixes)
        if targets == "last":
            assert len(batch_targets) == config["stage2_batch"]
        else:  # a window's earlier items are targets too, given only the items before them
            assert config["stage2_batch"] < len(batch_targets) <= config["stage2_batch"] * config["max_prefix"]
    drawn = np.bincount([t for _, batch_targets in batches for t in batch_targets], minlength=len(trainer.items))
    q = target_distribution(trainer.sessions, len(trainer.items), trainer.target_window())
    assert 0.5 * np.abs(drawn / drawn.sum() - q).sum() < 0.05  # total variation


def test_items_are_read_in_length_batches_and_come_back_in_their_order(tiny_llm, image_root,
                                                                     tmp_path):
    assert length_batches([5, 2, 9, 2, 7], 2) == [[1, 3], [0, 4], [2]]
    trainer = Pretrainer("demo", pretrain_config("demo", config_dict=settings(image_root, tmp_path,
                                                                              encode_batch=4)),
                         backbone=backbone(tiny_llm))
    trainer._build()
    trainer.lower = trainer.lower_state_cache().load_or_compute(4, show_progress=False)
    rows = [5, 0, 17, 3, 9, 12, 1, 30, 8, 77, 64]
    lengths = trainer.backbone.read_lengths(trainer.items, trainer.config["encode_prompt"])
    assert lengths == [s.shape[0] for s in trainer.lower]  # token counts, image tokens included
    assert len({lengths[r] for r in rows}) > 1
    assert trainer.backbone.read_lengths([], trainer.config["encode_prompt"]) == []  # all cached
    for r in rows:  # the cache holds each item's own states, whatever batch computed them
        alone = trainer.backbone.lower_states([trainer.items[r]], trainer.config["encode_prompt"],
                                              trainer.upto)[0]
        assert torch.allclose(trainer.lower[r].float(), alone.cpu(), atol=1e-2)  # the cache is on the CPU
    with torch.no_grad():
        together = trainer.encode(rows, "transfer")
        alone = torch.cat([trainer.encode([r], "transfer") for r in rows])
        assert torch.allclose(together, alone, atol=1e-4)
        # encode_all runs under the run's precision (bf16 autocast on a GPU): looser there
        atol = 1e-4 if trainer.config["precision"] == "fp32" else 2e-2
        assert torch.allclose(trainer.encode_all("transfer", "z_T")[rows], alone, atol=atol)


def test_feature_path_is_what_feature_source_names(tmp_path):
    assert feature_path(tmp_path, "demo").name == "demo.tpad-zU.npy"


@pytest.mark.parametrize("query", ["state", "last_item"])
def test_stage2_learns_the_transitions(tiny_llm, image_root, tmp_path, query):
    """On data with real transitions the next-item loss falls well below chance (log batch),
    whether the session asks through its state alone or through its last item plus it."""
    pretrain("demo", config_dict=settings(image_root, tmp_path, stage2_steps=60, stage1_steps=2,
                                          checkpoint_every=60, stage2_lr=0.003, session_query=query),
             backbone=backbone(tiny_llm))
    import torch

    work = next((tmp_path / "pretrain").glob("demo-*"))
    rows = [r for r in torch.load(work / "checkpoint.pt", weights_only=True)["log"]
            if r["stage"] == "stage2"]
    # held out (validation cases): the Transfer-MLLM ranks next items above popularity
    held_out = json.loads((work / "summary.json").read_text())["held_out"]
    assert held_out["cases"] >= 20
    assert held_out["transfer_recall@20"] > held_out["popularity_recall@20"], held_out
    assert 0 < held_out["last_item_recall@20"] <= 1  # the content-only ranking beside it
    assert held_out["markov_recall@20"] > held_out["popularity_recall@20"]  # ID transitions, no content
    first = np.mean([r["next"] for r in rows[:10]])
    last = np.mean([r["next"] for r in rows[-10:]])
    if query == "state":  # chance at the start (16 sessions per batch)
        assert abs(first - np.log(16)) < 0.2
    assert last < first - 0.2, (first, last)  # measured: state 2.84 -> 2.51, last_item 3.11 -> 2.15
    assert all(abs(r["hmie_item"]) < 5 for r in rows)  # unit-vector CLUB stays bounded


def test_an_ablation_writes_its_own_files_and_reuses_the_lower_layer_states(tiny_llm, image_root,
                                                                            tmp_path):
    # an earlier test's files of these settings are current (the work folder's key is the
    # settings, not the folder), and pretrain would return them without computing anything
    for path in (image_root / "demo").glob("demo.tpad*-z?.npy"):
        path.unlink()
    full = pretrain("demo", config_dict=settings(image_root, tmp_path), backbone=backbone(tiny_llm))
    full_bytes = np.load(full["zU"]).tobytes()
    chunks = sorted((tmp_path / "pretrain" / "lower-states").glob("*/chunk-*.pt"))
    assert chunks
    stamps = [c.stat().st_mtime_ns for c in chunks]
    ablation = pretrain("demo", config_dict=settings(image_root, tmp_path, use_hmie=False,
                                                     feature_prefix="tpad-noHMIE"),
                        backbone=backbone(tiny_llm))
    assert ablation["zU"].name == "demo.tpad-noHMIE-zU.npy"
    assert np.load(full["zU"]).tobytes() == full_bytes  # the full method's files are untouched
    assert not np.array_equal(np.load(ablation["zU"]), np.load(full["zU"]))
    # stage 1 and the frozen layers do not depend on stage-2 switches: one set of states serves both
    assert sorted((tmp_path / "pretrain" / "lower-states").glob("*/chunk-*.pt")) == chunks
    assert [c.stat().st_mtime_ns for c in chunks] == stamps
    assert np.array_equal(np.load(ablation["zK"]), np.load(full["zK"]))
    # mean pooling reads the same frozen states, in its own work folder and files
    mean = pretrain("demo", config_dict=settings(image_root, tmp_path, item_pooling="mean",
                                                 feature_prefix="tpad-mean"),
                    backbone=backbone(tiny_llm))
    assert read_metadata(mean["zU"])["producer"]["config"]["item_pooling"] == "mean"
    assert not np.allclose(np.load(mean["zK"]), np.load(full["zK"]), atol=1e-3)
    assert Path(read_metadata(mean["zU"])["producer"]["work_dir"]).name \
        != Path(read_metadata(full["zU"])["producer"]["work_dir"]).name
    assert [c.stat().st_mtime_ns for c in chunks] == stamps
    # a producer config from before the key existed (new items re-read its run) is a last-token run
    earlier = dict(read_metadata(full["zU"])["producer"]["config"])
    earlier.pop("item_pooling")
    run = Pretrainer("demo", earlier, backbone=backbone(tiny_llm))
    assert run.config["item_pooling"] == "last"
    assert run.work_dir.name == Path(read_metadata(full["zU"])["producer"]["work_dir"]).name


def test_the_lower_layer_cache_is_kept_apart_by_precision(tmp_path):
    from recbole_tpad.distill.state import LowerStateCache
    from recbole_tpad.mllm.prompts import ItemContent

    class Weights:  # what the cache reads of a backbone to name its folder
        def fingerprint(self):
            return "weights-1"

    items = [ItemContent("a", "a red ball", None), ItemContent("b", "a blue bat", None)]
    folder = {p: LowerStateCache(tmp_path, Weights(), "Item: {text}", 2, items, p).folder
              for p in ("fp32", "bf16")}
    # bf16 states are computed differently, not fp32 ones rounded: a run of the other precision
    # must not read them; fp32 keeps the folder it had before precision was part of the name
    assert folder["fp32"] != folder["bf16"]
    assert folder["fp32"] == LowerStateCache(tmp_path, Weights(), "Item: {text}", 2, items).folder


def test_each_calls_thread_count_is_kept_and_a_mixed_run_says_so():
    """A run resumed with another thread count writes other features: the summary keeps every
    call's count (unknown for calls before the clock kept them) and the report names them."""
    from recbole_tpad.benchmark.pretrain_report import threads_text
    from recbole_tpad.distill.state import RunClock

    first = RunClock({}, threads=2).totals()
    assert first["threads_by_call"] == [2] and first["calls"] == 1
    resumed = RunClock(first, threads=1).totals()
    assert resumed["threads_by_call"] == [2, 1] and resumed["calls"] == 2
    old = RunClock({"calls": 2, "total_s": 5.0}, threads=1).totals()  # a checkpoint without the list
    assert old["threads_by_call"] == [None, None, 1]
    assert threads_text({"threads": 1, "threads_by_call": [1, 1]}) == "1 torch thread"
    assert threads_text({"threads": 2}) == "2 torch threads"
    mixed = threads_text({"threads": 1, "threads_by_call": [2, 1]})
    assert mixed.startswith("torch threads by call 2, 1 (") and "not a one-count run's" in mixed
    assert threads_text({"threads": 1, "threads_by_call": [None, 1]}).startswith("torch threads by call ?, 1")


def test_quiet_mode_still_shows_progress_with_an_estimate(capsys):
    from recbole_tpad.runtime import progress

    for _ in progress(range(3), show=False, desc="stage2"):
        pass
    err = capsys.readouterr().err
    assert "stage2" in err and "3/3" in err


def test_device_and_precision_are_resolved_and_refused_when_absent():
    from recbole_tpad.distill.settings import resolve_device

    if torch.cuda.is_available():
        assert resolve_device({"device": "auto"})[0] == "cuda"
    else:
        assert resolve_device({"device": "auto", "precision": "auto"}) == ("cpu", "fp32")
        with pytest.raises(PretrainConfigError, match="device=cuda: torch .* sees no CUDA GPU here"):
            resolve_device({"device": "cuda"})
        with pytest.raises(PretrainConfigError, match="precision=bf16 needs a GPU"):
            resolve_device({"device": "cpu", "precision": "bf16"})
    with pytest.raises(PretrainConfigError, match="device='tpu'"):
        resolve_device({"device": "tpu"})
    # fp32 is every earlier run's setting: it leaves the work folder's key as it was
    from recbole_tpad.distill.settings import result_settings

    assert "precision" not in result_settings({"precision": "fp32", "device": "cpu", "seed": 1})
    earlier = {"seed": 1, "stage2_targets": "last", "session_query": "state", "item_pooling": "last"}
    assert result_settings(earlier) == {"seed": 1}
    assert result_settings({**earlier, "session_query": "last_item"}) == {"seed": 1, "session_query": "last_item"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the GPU "
                    "pretraining path (device=cuda, bf16 autocast) is not exercised here")
def test_tiny_pretrain_on_the_gpu_writes_the_same_contract(tiny_llm, image_root, tmp_path):
    paths = pretrain("demo", config_dict=settings(image_root, tmp_path / "saved", device="cuda",
                                                  feature_prefix="tpad-gpu"),
                     backbone=backbone(tiny_llm))
    meta = read_metadata(paths["zU"])
    assert meta["producer"]["config"]["device"] == "cuda" and np.isfinite(np.load(paths["zU"])).all()


def test_a_transition_teacher_is_learned_keys_the_work_folder_and_is_checked(tiny_llm, image_root,
                                                                              tmp_path):
    """``transition_teacher``: z_T learns the teacher's vectors (its term falls); the teacher's
    contents are part of the run's key (another teacher: another work folder, the old features
    not current); a missing teacher or a bad name is refused with what to do."""
    from recbole_tpad.data.features import write_feature_file
    from recbole_tpad.distill.settings import features_current, work_dir_for
    from dataset_tools.atomic import read_item_table

    data_dir = image_root / "demo"
    teacher = data_dir / "demo.teacher-test.npy"
    # a teacher that knows the training transitions: an item's vector holds itself and the items
    # it follows or precedes, so the last item's vector lies close to its likely next items
    ids = list(read_item_table(data_dir, "demo"))
    row = {item: k for k, item in enumerate(ids)}
    counts = transition_counts([[row[i] for i in s] for s in training_sessions(data_dir, "demo")],
                               len(ids)).toarray()
    both = counts + counts.T
    array = (np.eye(len(ids)) + both / np.maximum(both.sum(1, keepdims=True), 1)).astype(np.float32)
    write_feature_file(teacher, array[:-3], ids[:-3], "demo", data_dir, {"name": "test-teacher"})
    try:
        values = settings(image_root, tmp_path, stage1_steps=2, stage2_steps=30, checkpoint_every=30,
                          stage2_lr=0.003, transition_teacher="teacher-test")
        pretrain("demo", config_dict=values, backbone=backbone(tiny_llm))
        config = pretrain_config("demo", config_dict=values)
        work = work_dir_for("demo", config, data_dir)
        rows = [r for r in torch.load(work / "checkpoint.pt", weights_only=True)["log"]
                if r["stage"] == "stage2"]
        first = np.mean([r["teacher"] for r in rows[:5]])
        last = np.mean([r["teacher"] for r in rows[-5:]])
        assert last < first - 0.5, (first, last)  # measured: 3.6 -> 0.8
        held_out = json.loads((work / "summary.json").read_text())["held_out"]
        # the teacher's own ranking beside the others (measured 0.60, popularity 0.27)
        assert held_out["teacher_recall@20"] > held_out["popularity_recall@20"], held_out
        # the results report names the teacher and sets its column beside the others
        from recbole_tpad.benchmark.pretrain_report import main as report

        assert report(["--dataset=demo", f"--out={tmp_path / 'results'}"]
                      + [f"--{k}={v}" for k, v in values.items()]) == 0
        text = (tmp_path / "results" / "pretrain-demo.md").read_text()
        assert "Transition teacher: `teacher-test`" in text and "| stage 2 teacher |" in text
        assert "| **total** |" in text and "resumed the run" not in text  # one uninterrupted call
        row = next(line for line in text.splitlines() if line.startswith(f"| {held_out['cases']} |"))
        teacher_ratio = held_out["teacher_recall@20"] / held_out["popularity_recall@20"]
        assert row.endswith(f" {held_out['teacher_recall@20']:.4f} | {teacher_ratio:.2f} |"), row
        assert "| teacher's last item | teacher's ratio |" in text
        without = pretrain_config("demo", config_dict={**values, "transition_teacher": None})
        assert work_dir_for("demo", without, data_dir) != work
        assert features_current("demo", config, data_dir)
        write_feature_file(teacher, array[:-3] + 1.0, ids[:-3], "demo", data_dir, {"name": "retrained"})
        assert work_dir_for("demo", config, data_dir) != work
        assert not features_current("demo", config, data_dir)
    finally:
        teacher.unlink()
        teacher.with_suffix(".json").unlink()
    with pytest.raises(PretrainConfigError, match="python -m recbole_tpad.distill.teacher"):
        pretrain("demo", config_dict=values, backbone=backbone(tiny_llm))
    with pytest.raises(PretrainConfigError, match="teacher-<model>"):
        pretrain_config("demo", config_dict={**values, "transition_teacher": "sasrec"})


def test_the_transition_teacher_is_written_on_first_use_and_teaches(tiny_llm, image_root, tmp_path):
    """``transition_teacher: teacher-transitions``: no ID model and no command first; the
    pretrainer writes the file, and its held-out ranking (the last item's vector) beats popularity."""
    data_dir = image_root / "demo"
    written = data_dir / "demo.teacher-transitions.npy"
    values = settings(image_root, tmp_path, stage1_steps=2, stage2_steps=4, checkpoint_every=4,
                      transition_teacher="teacher-transitions")
    try:
        pretrain("demo", config_dict=values, backbone=backbone(tiny_llm))
        assert written.is_file()
        from recbole_tpad.distill.settings import work_dir_for

        work = work_dir_for("demo", pretrain_config("demo", config_dict=values), data_dir)
        held_out = json.loads((work / "summary.json").read_text())["held_out"]
        assert held_out["teacher_recall@20"] > 1.5 * held_out["popularity_recall@20"], held_out
    finally:
        for path in (written, written.with_suffix(".json")):
            path.unlink(missing_ok=True)
