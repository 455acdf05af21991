"""Ray Tune driver: search spaces, a real 2-trial search, a crashing trial, resume, a cluster."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from recbole_tpad.paths import PROJECT_ROOT, properties_dir
from recbole_tpad.tune.search import SearchSetupError, run_search
from recbole_tpad.tune.space import SearchSpaceError, param_space, read_space_file

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

TINY = {"epochs": 2, "train_batch_size": 256, "eval_batch_size": 256, "embedding_size": 16,
        "inner_size": 32, "build_missing_features": False, "feature_source": "text-minilm"}


def tiny_cli(data_path):
    """TINY and the data path as run_hyper.py's fixed ``--key=value`` arguments."""
    return [f"--{k}={v}" for k, v in dict(TINY, data_path=data_path).items()]


def write_space(path, text):
    path.write_text(text)
    return path


def test_every_shipped_space_file_reads(tmp_path):
    files = sorted((properties_dir() / "hyper").glob("*.yaml"))
    assert {"TPAD", "SASRec", "GRU4Rec", "SRGNN"} <= {f.stem for f in files}
    for path in files:
        space = param_space(read_space_file(path), "hyperopt", path)
        assert space, path


def test_samplers_and_searchers(tmp_path):
    raw = read_space_file(write_space(tmp_path / "s.yaml", (
        "learning_rate: {loguniform: [1.0e-4, 1.0e-2]}\nn_layers: {choice: [1, 2]}\n"
        "inner_size: {grid: [32, 64]}\nembedding_size: 16\n")))
    random = param_space(raw, "random")
    assert isinstance(random["learning_rate"], tune.search.sample.Float)
    assert isinstance(random["n_layers"], tune.search.sample.Categorical)
    assert random["inner_size"] == {"grid_search": [32, 64]}
    assert random["embedding_size"] == 16
    assert param_space(raw, "hyperopt")["inner_size"].categories == [32, 64]  # hyperopt cannot grid
    with pytest.raises(SearchSpaceError, match="learning_rate.*continuous"):
        param_space(raw, "grid")
    only_discrete = {k: v for k, v in raw.items() if k != "learning_rate"}
    assert param_space(only_discrete, "grid")["n_layers"] == {"grid_search": [1, 2]}


@pytest.mark.parametrize("text, message", [
    ("lr: {lognormal: [1, 2]}\n", r"s.yaml: key 'lr': unknown sampler 'lognormal'"),
    ("lr: {uniform: [1]}\n", r"s.yaml: key 'lr': uniform takes 2 numbers"),
    ("lr: {choice: []}\n", r"s.yaml: key 'lr': choice needs a non-empty list"),
    ("lr: {choice: [1], uniform: [0, 1]}\n", r"key 'lr': give exactly one sampler"),
    ("- a\n- b\n", r"s.yaml: expected a mapping"),
])
def test_bad_space_files_are_refused_by_key(tmp_path, text, message):
    with pytest.raises(SearchSpaceError, match=message):
        read_space_file(write_space(tmp_path / "s.yaml", text))


def test_missing_space_file_lists_the_shipped_ones(tmp_path):
    with pytest.raises(SearchSpaceError, match="not found.*SASRec"):
        read_space_file(tmp_path / "nope.yaml")


@pytest.fixture(scope="module")
def local_ray():
    temp = tempfile.mkdtemp(prefix="rt")  # short: Ray's unix socket paths are limited
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def search_args(demo_root, demo_features, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return dict(config_dict=dict(TINY, data_path=str(demo_root)), storage=str(tmp_path / "rr"),
                verbose=0)


@pytest.mark.slow
def test_two_trial_search_writes_table_and_a_best_config_that_reruns(local_ray, search_args,
                                                                      tmp_path):
    space = write_space(tmp_path / "s.yaml", "learning_rate: {grid: [0.0001, 0.01]}\n")
    outcome = run_search("TPAD", "demo", space_file=space, num_samples=1, scheduler="fifo",
                         name="two", out=str(tmp_path / "results"), **search_args)
    rows = outcome.rows
    assert [r["status"] for r in rows] == ["complete", "complete"]
    assert all(r["epochs"] == 2 and r["peak_rss_mb"] > 50 for r in rows)
    # sorted best first; a 100x larger learning rate learns far more in two epochs
    assert rows[0]["learning_rate"] == 0.01
    assert rows[0]["best valid NDCG@10"] > rows[1]["best valid NDCG@10"]
    assert 0 < rows[0]["test/ndcg@10"] <= 1
    table = outcome.table_file.read_text()
    assert "| complete | 0.01 |" in table.replace("0.0100", "0.01") and "run_search" not in table
    assert (tmp_path / "results" / "tune-two.md").is_file()
    assert outcome.csv_file.read_text().count("\n") == 3

    best = yaml.safe_load(outcome.best_config_file.read_text())
    assert best["model"] == "TPAD" and best["dataset"] == "demo" and best["learning_rate"] == 0.01
    assert "checkpoint_dir" not in best and best["epochs"] == 2
    sys.path.insert(0, str(PROJECT_ROOT))
    import run_recbole_tpad

    assert run_recbole_tpad.main([f"--config_files={outcome.best_config_file}",
                                  f"--checkpoint_dir={tmp_path / 'rerun'}", "--show_progress=False"]) == 0
    assert list((tmp_path / "rerun").glob("TPAD-*.pth"))

    # resume: the finished experiment is restored, nothing is trained again
    again = run_search("TPAD", "demo", space_file=space, num_samples=1, scheduler="fifo",
                       name="two", resume=True, **search_args)
    assert [(r["trial"], r["status"]) for r in again.rows] == [(r["trial"], r["status"]) for r in rows]
    with pytest.raises(SearchSetupError, match="exists: pass --resume"):
        run_search("TPAD", "demo", space_file=space, name="two", **search_args)
    with pytest.raises(SearchSetupError, match="nothing to resume"):
        run_search("TPAD", "demo", space_file=space, name="other", resume=True, **search_args)


@pytest.mark.slow
def test_a_crashing_trial_is_reported_and_the_search_goes_on(local_ray, search_args, tmp_path):
    space = write_space(tmp_path / "s.yaml", "fusion: {grid: [residual, no-such-fusion]}\n")
    outcome = run_search("TPAD", "demo", space_file=space, num_samples=1, name="crash",
                         **search_args)
    by_fusion = {r["fusion"]: r for r in outcome.rows}
    assert by_fusion["residual"]["status"] == "complete"
    assert by_fusion["no-such-fusion"]["status"] == "error"
    assert "fusion='no-such-fusion'" in by_fusion["no-such-fusion"]["error"]
    assert "no-such-fusion" in outcome.table_file.read_text()
    assert yaml.safe_load(outcome.best_config_file.read_text())["fusion"] == "residual"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _ray_cli():
    return str(Path(sys.executable).with_name("ray"))


@pytest.mark.slow
def test_search_on_a_two_node_local_cluster(demo_root, demo_features, tmp_path):
    """A real Ray cluster on loopback: a head and a worker node, one CPU each; the two trials
    must run on different nodes, reached only through --ray-address."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="rc")
    # Ray's default for a cluster: token authentication. Every process of this test gets the
    # same token explicitly, so nothing depends on ~/.ray/auth_token or on whether a local
    # ray.init() of an earlier test has already switched this process's mode.
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(16))
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    head = subprocess.Popen([_ray_cli(), "start", "--head", "--node-ip-address=127.0.0.1",
                             f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                             *common], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 60
        # `ray status` waits about 40 s for a GCS that is not up yet: poll its port first
        while not _port_open(port):
            assert time.time() < deadline, "the head node did not open its port"
            time.sleep(0.2)
        while subprocess.run([_ray_cli(), "status", f"--address={address}"], env=env,
                             capture_output=True).returncode != 0:
            assert time.time() < deadline, "the head node did not start"
            time.sleep(1)
        worker = subprocess.Popen([_ray_cli(), "start", f"--address={address}",
                                   "--node-ip-address=127.0.0.1", *common], env=env,
                                  start_new_session=True, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        while "2.0 CPU" not in subprocess.run([_ray_cli(), "status", f"--address={address}"],
                                              env=env, capture_output=True, text=True).stdout:
            assert time.time() < deadline, "the worker node did not join"
            time.sleep(1)
        space = write_space(tmp_path / "s.yaml", "learning_rate: {grid: [0.001, 0.01]}\n")
        done = subprocess.run(
            [sys.executable, str(PROJECT_ROOT / "run_hyper.py"), "--model=TPAD", "--dataset=demo",
             f"--space={space}", "--scheduler=fifo", "--num-samples=1", "--name=cluster",
             f"--storage={tmp_path / 'rr'}", f"--ray-address={address}", *tiny_cli(demo_root)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        import csv

        rows = list(csv.DictReader(open(tmp_path / "rr" / "cluster" / "trials.csv")))
        assert [r["status"] for r in rows] == ["complete", "complete"]
        assert len({r["node"] for r in rows}) == 2, rows  # one trial on each node
    finally:
        # a blocking head takes about 30 s to shut down gracefully: give each node a few
        # seconds, then end its whole process group (raylet, GCS and workers are in it)
        for process in (worker, head):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)


def test_best_yaml_records_the_values_trials_used():
    import numpy as np

    from recbole_tpad.tune.search import _plain

    # a search-space string that looks like a literal is that literal in the trial's Config;
    # code is a plain string in both
    code = "__import__('os').getcwd()"
    assert _plain({"topk": "[5, 10]", "fusion": "gate", "lr": np.float64(0.01), "x": code}) == {
        "topk": [5, 10], "fusion": "gate", "lr": 0.01, "x": code}


def test_a_variant_is_searched_under_its_label_with_its_space(search_args, tmp_path):
    # a variant names the experiment and takes its model's space (TPAD's), refused here before
    # Ray starts since there is nothing to resume
    with pytest.raises(SearchSetupError, match=r"nothing to resume at .*TPAD-ID-demo-random"):
        run_search("TPAD-ID", "demo", resume=True, **search_args)


def test_a_refused_cluster_connection_says_how_to_send_the_token(search_args, tmp_path, monkeypatch,
                                                                 capsys):
    """Ray reports a cluster that refuses a driver without its token as "Failed to connect";
    the error says which address, what to check, and where this machine keeps a token."""
    from recbole_tpad.tune.cluster import ClusterConnectionError, connect_to_cluster

    calls = []

    def refused(**kwargs):
        calls.append(kwargs)
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379")

    monkeypatch.setattr(ray, "init", refused)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ClusterConnectionError) as caught:
        connect_to_cluster("10.0.0.1:6379", log_to_driver=False)
    text = str(caught.value)
    assert calls == [{"address": "10.0.0.1:6379", "log_to_driver": False}]
    assert "ray status --address=10.0.0.1:6379" in text and "RAY_AUTH_MODE=token" in text
    assert "this machine has one" not in text and "RAY_AUTH_MODE is unset here" in text
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 32)
    with pytest.raises(ClusterConnectionError, match=r"this machine has one: .*\.ray/auth_token"):
        connect_to_cluster("10.0.0.1:6379")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    with pytest.raises(ClusterConnectionError,
                       match="check that this driver's token .* is the cluster's"):
        connect_to_cluster("10.0.0.1:6379")
    # run_hyper reports it as its other setup errors: the advice, exit status 2
    monkeypatch.delenv("RAY_AUTH_MODE")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    sys.path.insert(0, str(PROJECT_ROOT))
    import run_hyper

    assert run_hyper.main(["--model=TPAD", "--dataset=demo", "--ray-address=10.0.0.1:6379",
                           f"--storage={tmp_path / 'rr'}",
                           *tiny_cli(search_args["config_dict"]["data_path"])]) == 2
    assert "this machine has one" in capsys.readouterr().err
