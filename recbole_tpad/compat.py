"""Every shim RecBole 1.2.1 needs on today's numpy, torch and hyperopt, in one place.

RecBole 1.2.1 was written for numpy < 1.24, torch < 2.6 and hyperopt < 0.2.7 (and for one run
at a time: see :func:`race_free_ensure_dir`; and for item files without quotes in them: see
:func:`read_atomic_files_unquoted`). Its pickled checkpoints are not shimmed: the
plugin's trainers save and load their own pickle-free ones (:mod:`recbole_tpad.checkpoints`),
so nothing here loosens ``torch.load``'s ``weights_only=True``. Each shim below
fixes one breakage found on the pinned stack (see README, "RecBole on today's stack"); each is
idempotent and covered by ``tests/test_compat.py``. ``recbole_tpad/__init__.py`` calls
:func:`apply` before anything else of RecBole is imported by the plugin, and Ray workers get
it by importing the package.
"""

import csv
import importlib
import os
import sys
import types
import warnings

import numpy as np
import pandas as pd
import torch

#: numpy aliases removed in numpy 1.24 / 2.0 that RecBole still reads (``np.float`` in its
#: config compatibility code, ``np.float_`` in dataset code, and again after unpickling a Config).
NUMPY_ALIASES = {
    "float": float, "int": int, "bool": bool, "object": object, "str": str, "long": int,
    "float_": np.float64, "complex_": np.complex128, "unicode_": np.str_,
}

_applied = False


def add_numpy_aliases():
    """Put back the numpy aliases RecBole reads, only where numpy no longer has them."""
    for name, value in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)


def switch_off_anomaly_detection():
    """``recbole/model/sequential_recommender/sine.py`` turns on autograd anomaly detection at
    import, which slows every model in the process about 4x. Import it, then switch it off."""
    importlib.import_module("recbole.model.sequential_recommender")
    torch.autograd.set_detect_anomaly(False)


class _RandomWithGenerator(types.ModuleType):
    """``numpy.random`` whose ``RandomState`` is a ``Generator`` (hyperopt >= 0.2.7 calls
    ``rng.integers``, which ``RandomState`` lacks)."""

    def __init__(self):
        super().__init__("numpy.random")
        self.RandomState = np.random.default_rng

    def __getattr__(self, name):
        return getattr(np.random, name)


class _NumpyForHyperopt(types.ModuleType):
    def __init__(self):
        super().__init__("numpy")
        self.random = _RandomWithGenerator()

    def __getattr__(self, name):
        return getattr(np, name)


def fix_hyperopt_rng():
    """RecBole's exhaustive search builds ``np.random.RandomState`` for hyperopt; give only
    that module a numpy whose ``RandomState`` is ``default_rng``."""
    module = importlib.import_module("recbole.trainer.hyper_tuning")
    if not isinstance(module.np, _NumpyForHyperopt):
        module.np = _NumpyForHyperopt()


class _PandasForAtomicFiles(types.ModuleType):
    """``pandas`` whose ``read_csv`` reads fields as atomic files hold them: tab-separated text,
    no quoting, so a ``"`` inside a title is a character."""

    def __init__(self):
        super().__init__("pandas")

    def read_csv(self, *args, **kwargs):
        kwargs.setdefault("quoting", csv.QUOTE_NONE)
        return pd.read_csv(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(pd, name)


def read_atomic_files_unquoted():
    """RecBole's ``Dataset._load_feat`` reads atomic files with pandas' default quoting, so an
    ``.item`` file whose titles hold a double quote (``12" ruler``; amazon-sports has them)
    fails to load with ``ParserError: '\t' expected after '"'`` (RecBole issue #2017) as soon as
    a model loads item fields (SASRecF's ``selected_features``). Give only that module a pandas
    that reads them unquoted."""
    module = importlib.import_module("recbole.data.dataset.dataset")
    if not isinstance(module.pd, _PandasForAtomicFiles):
        module.pd = _PandasForAtomicFiles()


def register_model(name, module):
    """Make a plugin model visible to ``recbole.utils.get_model`` (and so to
    ``load_data_and_model`` and checkpoints) as ``recbole.model.sequential_recommender.<name>``.

    ``get_model`` only searches ``recbole.model.*``; a module found in ``sys.modules`` is used
    before its later search of ``exlib_recommender`` would import xgboost and lightgbm.
    """
    package = importlib.import_module("recbole.model.sequential_recommender")
    qualified = f"{package.__name__}.{name.lower()}"
    sys.modules[qualified] = module
    setattr(package, name.lower(), module)
    setattr(package, name, getattr(module, name))


def register_dataset(name, cls):
    """Make a plugin dataset class visible to RecBole's ``create_dataset``, which takes
    ``recbole.data.dataset.<Model>Dataset`` when it exists (as for UniSRec)."""
    setattr(importlib.import_module("recbole.data.dataset"), name, cls)


def register_trainer(name, cls):
    """Make a plugin trainer visible to RecBole's ``get_trainer`` (``recbole.trainer.<Model>Trainer``)."""
    setattr(importlib.import_module("recbole.trainer"), name, cls)


def read_plugin_model_properties(model_files):
    """RecBole's ``Config`` reads a model's defaults only from ``recbole/properties/model/``;
    after this, it also reads the yaml files ``model_files(model, model_class)`` names, so
    ``recbole.quick_start.run_recbole(model="TPAD")`` gets TPAD's defaults as the plugin's own
    Config does. Idempotent: a second call replaces the first's reader."""
    from recbole.config.configurator import Config

    original = getattr(Config._load_internal_config_dict, "__wrapped__",
                       Config._load_internal_config_dict)

    def _load_internal_config_dict(self, model, model_class, dataset):
        original(self, model, model_class, dataset)
        for path in model_files(model, model_class):
            self._update_internal_config_dict(str(path))

    _load_internal_config_dict.__wrapped__ = original
    Config._load_internal_config_dict = _load_internal_config_dict


def quiet_recbole_future_warnings():
    """RecBole's own code triggers pandas (chained ``fillna(inplace=True)``) and torch
    (``torch.cuda.amp.GradScaler``) FutureWarnings on every run; they say nothing a user can act
    on, so those raised from ``recbole.*`` modules are hidden. Warnings from elsewhere stay."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole(\.|$)")


def _makedirs(dir_path):
    os.makedirs(dir_path, exist_ok=True)


def race_free_ensure_dir():
    """RecBole's ``ensure_dir`` checks, then creates: two runs starting at once (the comparison's
    ``--jobs``) race, and the loser dies with FileExistsError on ``./log``. Use exist_ok."""
    for name in ("recbole.utils.utils", "recbole.utils.logger", "recbole.utils", "recbole.data.utils"):
        module = importlib.import_module(name)
        if hasattr(module, "ensure_dir"):
            module.ensure_dir = _makedirs


def apply():
    """Apply every shim once (idempotent)."""
    global _applied
    if _applied:
        return
    add_numpy_aliases()
    quiet_recbole_future_warnings()
    switch_off_anomaly_detection()
    fix_hyperopt_rng()
    race_free_ensure_dir()
    read_atomic_files_unquoted()
    _applied = True
