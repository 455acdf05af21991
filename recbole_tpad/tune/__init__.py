"""Hyperparameter search with Ray Tune: search spaces from ``properties/hyper/``, one trial =
one :func:`recbole_tpad.quick_start.run`."""
