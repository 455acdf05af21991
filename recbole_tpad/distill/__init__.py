"""TPAD pretraining: mutual-information estimators (the stage losses and loop are to come)."""
