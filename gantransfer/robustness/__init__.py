"""Adversarial robustness: FGSM and PGD attacks on any saved classifier, and robust accuracy."""

from gantransfer.robustness.attacks import (METHODS, AttackSettings, RobustPoint,
                                            adversarial_examples, check_epsilons, robust_accuracy)

__all__ = ["METHODS", "AttackSettings", "RobustPoint", "adversarial_examples", "check_epsilons",
           "robust_accuracy"]
