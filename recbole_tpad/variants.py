"""Named model variants (``properties/variants.yaml``): a label such as ``TPAD-zU-SS-default``
stands for a model and the settings that make a row of the results tables.

Every entry point that takes a model name takes a variant label too: the run script, the Ray
search and the cost benchmarks through :func:`prepare_variant`, the comparison (which pretrains
once for all its units) from the same pieces. So a row of the README's tables is re-run by its
label alone, and a variant's own pretraining settings (its ``pretrain`` block, e.g. ``use_hmie:
False`` for ``TPAD-noHMIE``) are the ones its features are made with: TPAD's dataset, left to
itself, would pretrain a missing file with ``properties/pretrain/``'s defaults under the
variant's file name.
"""

from recbole_tpad.paths import properties_dir


def variants():
    """``{label: {model: ..., <setting>: ...}}`` of ``properties/variants.yaml``."""
    import yaml

    return yaml.safe_load((properties_dir() / "variants.yaml").read_text()) or {}


def resolve_variant(label):
    """``TPAD-zU`` -> ``("TPAD", {"feature_source": "tpad-zU"})`` from ``properties/variants.yaml``;
    a label not listed there is a plain model name with no overrides. A variant's ``pretrain``
    settings stay in the overrides under that key (see :func:`pretrained_views`)."""
    found = variants()
    if label in found:
        spec = dict(found[label])
        return spec.pop("model"), spec
    return label, {}


def check_labels(labels):
    """Refuse, before anything runs, a label that is neither a variant nor a model name, and a
    variant whose ``model`` is unknown (a comparison would otherwise pretrain for its other
    labels and then fail in that unit's process); the error names the label and what is known."""
    from recbole_tpad.registry import UnknownModelError, get_model

    listed = variants()
    for label in labels:
        model = resolve_variant(label)[0]
        try:
            get_model(model)
        except UnknownModelError as error:
            where = (f"the variant {label!r} of properties/variants.yaml names an" if label in listed
                     else f"{label!r} is not a variant of properties/variants.yaml, nor a known model:")
            raise UnknownModelError(f"{where} {error}") from None


def with_pretrained_source(model, overrides, config_dict=None):
    """The variant's overrides, with the pretrained feature source its runs will read made
    explicit when it comes from the command line or the model's yaml (a plain ``TPAD`` reads
    ``tpad-zU``): so the pretrainer runs once before the units, not in each unit at once, and
    the run's settings name the file."""
    import yaml

    from recbole_tpad.data.sources import FeatureSource

    given = config_dict or {}
    if "feature_source" in overrides or False in (overrides.get("use_features"), given.get("use_features")):
        return overrides
    source = given.get("feature_source")
    if source is None:
        path = properties_dir() / "model" / f"{model}.yaml"
        source = (yaml.safe_load(path.read_text()) or {}).get("feature_source") if path.is_file() else None
    if source and FeatureSource.parse(source).pretrained:
        return {**overrides, "feature_source": source}
    return overrides


def recbole_overrides(overrides):
    """A variant's settings for the RecBole run: all but its ``pretrain`` block."""
    return {k: v for k, v in overrides.items() if k != "pretrain"}


def pretrained_views(overrides):
    """``(pretrain settings, view)`` of a variant reading pretrained features, else ``None``:
    ``feature_source: tpad-noHMIE-zU`` -> ``({"feature_prefix": "tpad-noHMIE", ...}, "zU")``."""
    from recbole_tpad.data.sources import FeatureSource

    source = FeatureSource.parse(overrides.get("feature_source", ""))
    if not source.pretrained:
        return None
    return {**overrides.get("pretrain", {}), "feature_prefix": source.producer}, source.view


def pretrain_only_keys():
    """Settings only the pretrainer reads (they must not reach RecBole's Config)."""
    from recbole_tpad.distill.settings import pretrain_keys

    return pretrain_keys() - {"seed", "data_path", "checkpoint_dir", "show_progress"}


def prepare_variant(label, dataset, config_dict=None, config_file_list=None, variant_wins=False):
    """``(model, settings)`` to train ``label`` (a variant or a plain model name) with: the
    variant's settings and ``config_dict``'s, the latter winning (a single run: what the user
    typed last), or with ``variant_wins`` the former (the comparison's rows: a row is what its
    label says, whatever the shared ``--key=value``). A variant with its own ``pretrain`` block
    has its features made first with those settings (a no-op when current); the pretrain-only
    keys of ``config_dict`` go to that pretraining, not to RecBole. Anywhere else they stay, so
    RecBole's Config refuses them by name rather than drop them unread."""
    model, overrides = resolve_variant(label)
    given = dict(config_dict or {})
    read = overrides if variant_wins else {
        **overrides, **{k: given[k] for k in ("feature_source", "use_features") if k in given}}
    views = pretrained_views(with_pretrained_source(model, read, given))
    if views and overrides.get("pretrain"):  # TPAD's dataset pretrains only the default settings
        from recbole_tpad.distill.runs import ensure_pretrained

        ensure_pretrained(dataset, {**given, **views[0]}, config_file_list, (views[1],))
        given = {k: v for k, v in given.items() if k not in pretrain_only_keys()}
    mine = recbole_overrides(overrides)
    return model, ({**given, **mine} if variant_wins else {**mine, **given})

