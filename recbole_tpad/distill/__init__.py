"""TPAD's pretrainer: training sessions, the MI estimators (InfoNCE, CLUB), the stage-2
objectives, the settings (read once), the run's state on disk (checkpoints, lower-state cache,
curves), the two-stage loop that writes the tpad-zU/zK/zT feature files, and what other stages
do with a run (``runs``: pretrain unless current; encode new items through a finished run)."""
