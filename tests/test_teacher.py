"""The transition teacher (``teacher-transitions``): item vectors factorised from the training
sessions, with no ID model to train (recbole_tpad/distill/teacher.py)."""

import random

import numpy as np
import pytest

from dataset_tools.demo import generate_demo
from recbole_tpad.data.features import read_metadata
from recbole_tpad.distill.teacher import (TRANSITION_TEACHER, TeacherError, main, teacher_file,
                                          transition_vectors)


def planted_sessions(groups=8, size=6, n_sessions=400, seed=0):
    """Sessions that walk inside one group of items each: the next item is always a group-mate."""
    rng = random.Random(seed)
    sessions = []
    for _ in range(n_sessions):
        group = rng.randrange(groups)
        sessions.append([group * size + rng.randrange(size) for _ in range(rng.randint(2, 6))])
    return sessions


def test_transition_vectors_rank_next_items_from_the_last_item_and_are_deterministic():
    """The last item's vector ranks its group-mates (the only possible next items) first, far
    above chance; items in no session are zero and not known; the same input gives the same bytes."""
    groups, size = 8, 6
    sessions = planted_sessions(groups, size)
    n_items = groups * size + 3  # three items never seen
    vectors, known = transition_vectors(sessions, n_items, dim=16)
    assert vectors.shape == (n_items, 16) and known[:-3].all() and not known[-3:].any()
    assert not vectors[-3:].any()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    hits = cases = 0
    for session in planted_sessions(groups, size, n_sessions=200, seed=1):
        for last, target in zip(session, session[1:]):
            scores = unit @ unit[last]
            hits += target in np.argsort(-scores)[:size]
            cases += 1
    assert hits / cases > 0.8, hits / cases  # chance: 6 of 51 items, about 0.12
    again, _ = transition_vectors(sessions, n_items, dim=16)
    assert np.array_equal(vectors, again)
    # a catalogue smaller than dim: fewer directions, not an error
    small, _ = transition_vectors([[0, 1, 2], [2, 3]], 5, dim=64)
    assert small.shape[0] == 5 and small.shape[1] <= 3
    none, known = transition_vectors([[0]], 4)
    assert not known.any()


@pytest.fixture()
def demo_dir(tmp_path):
    generate_demo(tmp_path / "demo", items_per_category=8, n_sessions=300, images=False)
    return tmp_path / "demo"


def test_the_pretrainer_writes_the_transition_teacher_and_rewrites_it_when_the_data_change(demo_dir, capsys):
    """``transition_teacher: teacher-transitions`` needs no command first: the file is written
    from the training sessions on first use, kept while the dataset is unchanged, and rewritten
    (another array checksum, so another work folder) when the dataset changes."""
    config = {"transition_teacher": TRANSITION_TEACHER}
    path, meta = teacher_file(config, demo_dir, "demo")
    assert path.is_file() and meta["producer"]["name"] == "transition-teacher"
    assert "writing the transition teacher" in capsys.readouterr().out
    stamp = path.stat().st_mtime_ns
    assert teacher_file(config, demo_dir, "demo")[0].stat().st_mtime_ns == stamp  # current: kept
    train = demo_dir / "demo.train.inter"
    lines = train.read_text().splitlines()
    train.write_text("\n".join(lines[:-40]) + "\n")  # fewer training sessions
    _, rewritten = teacher_file(config, demo_dir, "demo")
    assert rewritten["array_sha256"] != meta["array_sha256"]
    assert rewritten["producer"]["sessions"] < meta["producer"]["sessions"]
    # one written by hand with other settings is rewritten with those settings
    assert main(["--transitions", "--dataset=demo", f"--data_path={demo_dir.parent}", "--dim=8"]) == 0
    train.write_text("\n".join(lines[:-80]) + "\n")
    _, again = teacher_file(config, demo_dir, "demo")
    assert again["producer"]["dim"] == 8 and again["producer"]["sessions"] < rewritten["producer"]["sessions"]


def test_the_teacher_command_writes_transitions_and_refuses_bad_input(demo_dir, capsys):
    data_path = str(demo_dir.parent)
    assert main(["--transitions", "--dataset=demo", f"--data_path={data_path}", "--dim=8", "--window=2"]) == 0
    meta = read_metadata(demo_dir / "demo.teacher-transitions.npy")
    assert meta["producer"]["dim"] == 8 and meta["producer"]["window"] == 2
    assert np.load(demo_dir / "demo.teacher-transitions.npy").shape[1] == 8
    assert "--transition_teacher=teacher-transitions" in capsys.readouterr().out
    assert main(["--transitions"]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["--transitions", "--dataset=demo", f"--data_path={data_path}", "--decay=0"]) == 2
    assert "decay is in (0, 1]" in capsys.readouterr().err
    assert main(["--transitions", "--dataset=nosuch", f"--data_path={data_path}"]) == 2
    assert "nosuch" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # one source: a checkpoint or the transitions
        main(["--transitions", "--checkpoint=x.pth", "--dataset=demo"])
    with pytest.raises(TeacherError, match="no two items together.*--transition_teacher=None"):
        from recbole_tpad.distill.teacher import export_transition_teacher

        (demo_dir / "demo.train.inter").write_text(
            (demo_dir / "demo.train.inter").read_text().splitlines()[0] + "\n")
        export_transition_teacher(demo_dir, "demo")
