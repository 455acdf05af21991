"""TPAD's pretrainer: training sessions, the MI estimators (InfoNCE, CLUB), the stage-2
objectives and the two-stage loop that writes the tpad-zU/zK/zT feature files."""
