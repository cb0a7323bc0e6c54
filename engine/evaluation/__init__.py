"""Evaluating a trained run: scores per class, the confusion matrix, the costliest mistakes."""
