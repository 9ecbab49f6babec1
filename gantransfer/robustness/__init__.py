"""Adversarial robustness: gradient attacks on any saved classifier, and robust accuracy."""
