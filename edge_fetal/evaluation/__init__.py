"""Evaluation: measured biometry against ground truth, summarised per biometric in mm."""
