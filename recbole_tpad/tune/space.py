"""Search spaces: ``properties/hyper/<Model>.yaml`` (or any yaml) -> a Ray Tune ``param_space``.

One key per config value, one sampler per key::

    learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
    n_layers: {choice: [1, 2, 3]}
    hidden_dropout_prob: {uniform: [0.1, 0.5]}
    inner_size: {grid: [128, 256]}          # every value is tried (grid_search)
    embedding_size: 64                      # a plain value is fixed for every trial

Samplers: ``choice``, ``grid``, ``uniform [lo, hi]``, ``quniform [lo, hi, q]``,
``loguniform [lo, hi]``, ``randint [lo, hi)``. The searcher decides how discrete keys are
read: ``grid`` tries every combination of ``choice`` and ``grid`` values (and refuses
continuous samplers); ``hyperopt`` samples ``grid`` keys like ``choice`` (it cannot grid).
"""

from pathlib import Path

import yaml
from ray import tune

from recbole_tpad.paths import properties_dir

SAMPLERS = {
    "choice": (tune.choice, 1),
    "uniform": (tune.uniform, 2),
    "quniform": (tune.quniform, 3),
    "loguniform": (tune.loguniform, 2),
    "randint": (tune.randint, 2),
}
SEARCHERS = ("random", "grid", "hyperopt")


class SearchSpaceError(ValueError):
    """A search-space file cannot be read; the message names the file and key."""


def default_space_file(model):
    """``properties/hyper/<model>.yaml``, the search space a model is tuned over by default."""
    return properties_dir() / "hyper" / f"{model}.yaml"


def read_space_file(path):
    """The raw ``{key: spec}`` mapping of a search-space yaml, checked."""
    path = Path(path)
    if not path.is_file():
        available = sorted(p.stem for p in (properties_dir() / "hyper").glob("*.yaml"))
        raise SearchSpaceError(f"search space file {path} not found; write one (see "
                               f"recbole_tpad/tune/space.py) or use a model that has one: "
                               f"{', '.join(available)}")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SearchSpaceError(f"{path}: not valid yaml: {error}") from error
    if not isinstance(raw, dict) or not raw:
        raise SearchSpaceError(f"{path}: expected a mapping of config keys to samplers")
    for key, spec in raw.items():
        if isinstance(spec, dict):
            _check_spec(path, key, spec)
    return raw


def _check_spec(path, key, spec):
    if len(spec) != 1:
        raise SearchSpaceError(f"{path}: key {key!r}: give exactly one sampler, got {sorted(spec)}")
    (kind, args), = spec.items()
    if kind == "grid":
        kind = "choice"
    if kind not in SAMPLERS:
        raise SearchSpaceError(f"{path}: key {key!r}: unknown sampler {kind!r}; use one of "
                               f"{', '.join(['grid', *SAMPLERS])}")
    if not isinstance(args, list) or not args:
        raise SearchSpaceError(f"{path}: key {key!r}: {kind} needs a non-empty list")
    if kind != "choice" and len(args) != SAMPLERS[kind][1]:
        raise SearchSpaceError(f"{path}: key {key!r}: {kind} takes {SAMPLERS[kind][1]} numbers, "
                               f"got {args}")


def param_space(raw, searcher="random", path="search space"):
    """Ray Tune domains for ``raw`` (as :func:`read_space_file` returns) under ``searcher``."""
    if searcher not in SEARCHERS:
        raise SearchSpaceError(f"unknown searcher {searcher!r}; use one of {', '.join(SEARCHERS)}")
    space = {}
    for key, spec in raw.items():
        if not isinstance(spec, dict):
            space[key] = spec
            continue
        (kind, args), = spec.items()
        if kind in ("choice", "grid") and searcher == "grid":
            space[key] = tune.grid_search(list(args))
        elif kind == "grid" and searcher == "random":
            space[key] = tune.grid_search(list(args))
        elif kind in ("choice", "grid"):
            space[key] = tune.choice(list(args))
        elif searcher == "grid":
            raise SearchSpaceError(f"{path}: key {key!r}: grid search needs discrete values, "
                                   f"but {kind} is continuous; use choice/grid or another searcher")
        else:
            space[key] = SAMPLERS[kind][0](*args)
    return space
