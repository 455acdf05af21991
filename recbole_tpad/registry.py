"""Names to classes: models (the plugin's own first, then every model RecBole ships), their
datasets and their trainers, found as RecBole and RecBole-GNN find them (``<Model>Dataset``,
``<Model>Trainer``)."""

import importlib
import inspect

from recbole.model.abstract_recommender import AbstractRecommender
from recbole.utils import get_model as recbole_get_model

_RECBOLE_FAMILIES = (
    "sequential_recommender",
    "general_recommender",
    "context_aware_recommender",
    "knowledge_aware_recommender",
)


def plugin_models():
    """``{name: class}`` of the models this plugin adds."""
    from recbole_tpad.model.content import ContentKNN
    from recbole_tpad.model.sasrec_pub import SASRecPub
    from recbole_tpad.model.tpad import TPAD

    return {"TPAD": TPAD, "SASRecPub": SASRecPub, "ContentKNN": ContentKNN}


def recbole_models(family="sequential_recommender"):
    """Names of the models one RecBole family exports (e.g. SASRec, GRU4Rec, SRGNN)."""
    package = importlib.import_module(f"recbole.model.{family}")
    return sorted(
        name for name, obj in vars(package).items()
        if inspect.isclass(obj) and issubclass(obj, AbstractRecommender)
        and obj.__module__.startswith("recbole.model.")
    )


class UnknownModelError(ValueError):
    """Raised for a model name neither the plugin nor RecBole knows."""


def get_model(name):
    """The model class called ``name`` (case-sensitive, as RecBole's)."""
    if not isinstance(name, str):
        return name
    models = plugin_models()
    if name in models:
        return models[name]
    for family in _RECBOLE_FAMILIES:  # RecBole's own search would import xgboost/lightgbm
        found = getattr(importlib.import_module(f"recbole.model.{family}"), name, None)
        if inspect.isclass(found) and issubclass(found, AbstractRecommender):
            return found
    if name.lower() in ("xgboost", "lightgbm"):
        return recbole_get_model(name)  # raises ImportError naming the missing package
    raise UnknownModelError(
        f"unknown model {name!r}. Plugin models: {', '.join(sorted(models))}. "
        f"RecBole sequential models: {', '.join(recbole_models())}. "
        "Other RecBole families (general, context-aware, knowledge) are accepted by their class name too, "
        "and the run script takes the variants of properties/variants.yaml (--list-models lists them)."
    )


def get_trainer(model_type, model_name):
    """The trainer class of a model: the plugin's ``<Model>Trainer`` if it has one, else RecBole's."""
    from recbole.utils import get_trainer as recbole_get_trainer

    from recbole_tpad import trainer

    found = getattr(trainer, f"{model_name}Trainer", None)
    return found or recbole_get_trainer(model_type, model_name)


def dataset_class(config):
    """The dataset class of a run: :class:`recbole_tpad.data.dataset.TPADDataset` for the models
    that read item features (``reads_item_features``), else RecBole's ``<Model>Dataset`` or the
    class of the model's type, as RecBole's ``create_dataset`` chooses."""
    from recbole.data import dataset as recbole_datasets
    from recbole.utils import ModelType

    from recbole_tpad.data.dataset import TPADDataset

    if getattr(get_model(config["model"]), "reads_item_features", False):
        return TPADDataset
    own = getattr(recbole_datasets, f"{config['model']}Dataset", None)
    if own is not None:
        return own
    by_type = {ModelType.SEQUENTIAL: "SequentialDataset", ModelType.KNOWLEDGE: "KnowledgeBasedDataset"}
    return getattr(recbole_datasets, by_type.get(config["MODEL_TYPE"], "Dataset"))
