"""``time_gaps``: the gap to the item before, an input of TPAD's session encoder."""

import random

import pytest
import torch

from tests.test_cold import small_run_settings
from dataset_tools.atomic import write_atomic

DAY = 86400


def test_gaps_fall_into_log_scale_buckets_with_first_and_padding_apart():
    from recbole_tpad.model.time_gaps import FIRST, PADDING, time_gap_buckets

    times = torch.tensor([[0.0, 0.5, 1.5, 4.0, 100.0, 100.0],
                          [7.0, 3.0, 20.0, 0.0, 0.0, 0.0]]) * DAY
    lengths = torch.tensor([6, 3])
    # gaps (days): 0.5, 1, 2.5, 96, 0 | -4 (out of order: 0), 17, then padding
    assert time_gap_buckets(times, lengths, DAY, 12).tolist() == [
        [FIRST, 2, 3, 3, 2 + 6, 2], [FIRST, 2, 2 + 4, PADDING, PADDING, PADDING]]
    # the last bucket is open-ended
    assert time_gap_buckets(times, lengths, DAY, 3)[0].tolist() == [FIRST, 2, 3, 3, 4, 2]


def gap_dataset(root, name="gaps", users=300, seed=0):
    """Users who buy context items, then ``a``; the item after ``a`` is ``b`` when ``a`` came
    the same day as the item before it, ``c`` when weeks later. Only the gap tells which. The
    test target follows it; the validation target is the ``a`` after a context item."""
    rng = random.Random(seed)
    rows = []
    for u in range(users):
        t = rng.randrange(1000) * DAY
        for _ in range(4):
            same_day = rng.random() < 0.5
            for _ in range(rng.randrange(1, 6)):  # so that no position gives the answer away
                t += rng.randrange(2, 30) * DAY
                rows.append([f"u{u}", f"x{rng.randrange(12)}", str(t)])
            t += DAY // 4 if same_day else rng.randrange(20, 60) * DAY
            rows.append([f"u{u}", "a", str(t)])
            t += DAY // 8
            rows.append([f"u{u}", "b" if same_day else "c", str(t)])
    folder = root / name
    write_atomic(folder / f"{name}.inter",
                 [("user_id", "token"), ("item_id", "token"), ("timestamp", "float")], rows)
    return folder


def test_time_gaps_let_the_model_predict_what_only_the_gap_tells(tmp_path, monkeypatch, capsys):
    """The same ID model with and without ``time_gaps``: the next item after ``a`` is decided
    by the gap before ``a``, so with the gaps the model ranks it first on most test
    case; without them it can only guess between the two (about half). Validation (``a`` after
    a context item, right from the first epochs) cannot tell the two apart, so each model is
    validated once, after its last epoch, and that model is tested."""
    from recbole_tpad.quick_start import run

    monkeypatch.chdir(tmp_path)
    gap_dataset(tmp_path / "dataset")
    settings = dict(small_run_settings(tmp_path), use_features=False, feature_source=None,
                    embedding_size=16, hidden_size=16, inner_size=32, n_layers=1, n_heads=1,
                    epochs=15, eval_step=15, learning_rate=0.02, topk=[1, 5],
                    valid_metric="recall@1", content_prior=None, new_item_share=None,
                    cold_item_ids="learned", train_negatives="all", item_attributes=None,
                    hidden_dropout_prob=0.1, attn_dropout_prob=0.1)
    results = {on: run("TPAD", "gaps", config_dict=dict(settings, time_gaps=on)) for on in (False, True)}
    hit = {on: result["test_result"]["recall@1"] for on, result in results.items()}
    assert hit[True] > 0.8 and hit[False] < 0.65, hit
    # a trained model recommends from a session's items and their times (none: refused)
    from dataset_tools.atomic import read_atomic
    from recbole_tpad.recommend import Recommender, RecommendError

    recommender = Recommender.from_checkpoint(results[True]["saved_model_file"])
    _, rows = read_atomic(tmp_path / "dataset" / "gaps" / "gaps.inter")
    by_user = {}
    for user, item, time in rows:
        by_user.setdefault(user, []).append((item, float(time)))
    cases = [history for history in list(by_user.values())[:20]]  # each ends x.., a, then b|c
    sessions = [[item for item, _ in history[:-1]] for history in cases]
    times = [[time for _, time in history[:-1]] for history in cases]
    with pytest.raises(RecommendError, match="reads the time gaps .* give each session's times"):
        recommender.recommend(sessions[0])
    with pytest.raises(RecommendError, match="times of session 0: .* not a number"):
        recommender.recommend(sessions[0], times=["soon"] * len(sessions[0]))
    with pytest.raises(RecommendError, match="one time per item of each session"):
        recommender.recommend(sessions[0], times=times[0][:-1])
    top = [result.items[0].item for result in recommender.recommend_batch(sessions, k=1, times=times)]
    right = sum(item == history[-1][0] for item, history in zip(top, cases))
    assert right >= 15, (right, top)
    # the command line: --times with --session, --times-file with --sessions, the same ranking
    import run_recbole_tpad

    checkpoint = f"--checkpoint={results[True]['saved_model_file']}"
    assert run_recbole_tpad.main(["--stage=recommend", checkpoint, f"--session={','.join(sessions[0])}",
                                  f"--times={','.join(str(t) for t in times[0])}", "--topk=1"]) == 0
    assert f"| 1 | {top[0]} |" in capsys.readouterr().out
    assert run_recbole_tpad.main(["--stage=recommend", checkpoint, f"--session={','.join(sessions[0])}"]) == 2
    assert "give each session's times" in capsys.readouterr().err
    (tmp_path / "s.txt").write_text("".join(",".join(s) + "\n" for s in sessions))
    (tmp_path / "t.txt").write_text("".join(" ".join(str(t) for t in ts) + "\n" for ts in times))
    assert run_recbole_tpad.main(["--stage=recommend", checkpoint, f"--sessions={tmp_path / 's.txt'}",
                                  f"--times-file={tmp_path / 't.txt'}", "--topk=1",
                                  f"--out={tmp_path / 'top.json'}"]) == 0
    import json

    written = json.loads((tmp_path / "top.json").read_text())
    assert [r["items"][0]["item"] for r in written] == top
    (tmp_path / "t.txt").write_text("".join(" ".join(str(t) for t in ts) + "\n" for ts in times[:2])
                                    + "1 2 soon\n")
    assert run_recbole_tpad.main(["--stage=recommend", checkpoint, f"--sessions={tmp_path / 's.txt'}",
                                  f"--times-file={tmp_path / 't.txt'}"]) == 2
    assert "t.txt: 3 line(s) of times for 20 session(s)" in capsys.readouterr().err


def test_time_gaps_need_the_sequences_times(tmp_path, monkeypatch):
    """A dataset whose sequences hold no times (a session split's benchmark files) is refused
    by name; a forward without the times is refused; a bad unit or bucket count too."""
    from recbole_tpad.config import ConfigError, check_values
    from recbole_tpad.model.time_gaps import TimeGapEmbedding
    from recbole_tpad.quick_start import build_experiment

    monkeypatch.chdir(tmp_path)
    folder = gap_dataset(tmp_path / "dataset")
    settings = dict(small_run_settings(tmp_path), use_features=False, feature_source=None,
                    epochs=1, content_prior=None, new_item_share=None, cold_item_ids="learned",
                    item_attributes=None, time_gaps=True, topk=[1, 5], valid_metric="recall@1")
    sessions = tmp_path / "dataset" / "gaps-s"  # benchmark files as a session split has them
    for part in ("train", "valid", "test"):
        write_atomic(sessions / f"gaps-s.{part}.inter", [("session_id", "token"), (
            "item_id_list", "token_seq"), ("item_id", "token")],
            [[f"{part}{n}", f"x{n % 12} a", "b"] for n in range(40)]
            + [[f"{part}{n}c", f"x{n % 12} a", "c"] for n in range(40)])
    with pytest.raises(ValueError, match=r"time_gaps reads each sequence's times \(timestamp_list\)"
                                         r", which dataset gaps-s does not hold"):
        build_experiment("TPAD", "gaps-s", config_dict=settings)
    config, (train, _, _), trainer = build_experiment("TPAD", "gaps", config_dict=settings)
    batch = next(iter(train))
    model = trainer.model
    assert torch.equal(model.time_gaps.embedding.weight[0], torch.zeros(model.dim))
    with pytest.raises(ValueError, match="reads time gaps .* give forward the sequences' times"):
        model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    with pytest.raises(ValueError, match="time_gap_unit=0"):
        TimeGapEmbedding(8, unit=0)
    # a config the plugin did not check (RecBole's own run_recbole): 0 is refused, not replaced
    config["time_gap_unit"] = 0
    with pytest.raises(ValueError, match="time_gap_unit=0"):
        type(model)(config, train._dataset)
    with pytest.raises(ConfigError, match="time_gaps='yes': give True or False"):
        check_values({"time_gaps": "yes"})
    with pytest.raises(ConfigError, match="time_gap_buckets=0: give a whole number"):
        check_values({"time_gap_buckets": 0})
    assert folder.is_dir()


def test_a_times_file_is_checked_line_by_line(tmp_path):
    """``--times-file``: each line must hold one number per item of its session; a bad line is
    refused by its number before anything is scored."""
    from recbole_tpad.recommend import RecommendError, read_times

    sessions = [["a", "b"], ["c"]]
    path = tmp_path / "t.txt"
    path.write_text("0, 86400\n5\n")
    assert read_times(path, sessions, "s.txt") == [[0.0, 86400.0], [5.0]]
    path.write_text("0 86400\n5 6\n")
    with pytest.raises(RecommendError, match=r"t.txt line 2: 2 time\(s\) for the 1 item\(s\) of line 2 of s.txt"):
        read_times(path, sessions, "s.txt")
    path.write_text("0 soon\n5\n")
    with pytest.raises(RecommendError, match="t.txt line 1: '0 soon' holds a value that is not a number"):
        read_times(path, sessions, "s.txt")
    path.write_text("0 inf\n5\n")
    with pytest.raises(RecommendError, match="t.txt line 1: give finite numbers"):
        read_times(path, sessions, "s.txt")
