"""transfer.robustness and transfer.adversarial_training inside a real comparison on the digits."""

import json

import keras
import numpy as np
import pytest

import gantransfer as gt
from gantransfer.evaluation.results import StrategyResult
from gantransfer.evaluation.robustness import (render_robust_comparison, robust_comparisons,
                                               robustness_summary)
from gantransfer.gan.models import build_discriminator

SETTINGS = ["transfer.labels_per_class=10", "transfer.seeds=2", "transfer.max_epochs=5",
            "transfer.patience=2", "transfer.learning_rates=0.003", "transfer.cv_folds=2",
            "transfer.bn_images=200", "transfer.gan_metrics=false",
            "transfer.strategies=scratch,gan-frozen,gan-linear-probe,random-frozen",
            "transfer.robustness=0,0.05,0.2", "transfer.robustness_steps=3",
            "transfer.robustness_images=80"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same comparison twice, the second with FGSM adversarial training."""
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator(32, 1, width=0.125, kernel_size=3)
    folder = tmp_path_factory.mktemp("robust")
    plain = gt.transfer(gt.load_config("digits", SETTINGS), folder / "plain",
                        discriminator=discriminator, verbose=False)
    trained = gt.transfer(gt.load_config("digits", [*SETTINGS,
                                                    "transfer.strategies=scratch,gan-frozen,"
                                                    "gan-linear-probe",
                                                    "transfer.adversarial_training=fgsm",
                                                    "transfer.adversarial_epsilon=0.2"]),
                          folder / "adversarial", discriminator=discriminator, verbose=False)
    return plain, trained


@pytest.mark.slow
def test_every_model_is_attacked_and_the_report_answers_the_question(runs):
    plain, _ = runs
    ok = [r for r in plain.results if r.has_results]
    assert len(ok) == 8
    for record in ok:
        assert set(record.robust_accuracy) == {"0", "0.05", "0.2"}
        assert record.robust_accuracy["0.2"] <= record.robust_accuracy["0"]
        assert record.robustness_attack.startswith("PGD-3") and "80 test images" in \
            record.robustness_attack
        assert record.adversarial_training is None
    # Undefended networks fall far under a large budget.
    assert np.mean([r.robust_accuracy["0.2"] for r in ok if r.strategy == "scratch"]) < 0.3
    report = plain.files["report.md"].read_text()
    assert "## Robustness" in report and "figures/robustness.png" in report
    assert "Does pretraining make a classifier more robust?" in report
    assert "gan-frozen vs scratch" in report and "GAN pretraining vs a random trunk" in report
    document = json.loads(plain.files["results.json"].read_text())
    kinds = {c["kind"] for c in document["robustness"]["comparisons"]}
    assert kinds == {"pretraining", "control"}
    assert (plain.run_dir / "figures" / "robustness.png").is_file()


@pytest.mark.slow
def test_adversarial_training_reaches_every_network_and_no_probe(runs):
    plain, trained = runs
    for record in (r for r in trained.results if r.has_results):
        if record.strategy == "gan-linear-probe":
            assert record.adversarial_training is None
        else:
            assert record.adversarial_training == ("adversarial training (FGSM with a random "
                                                   "start, ε = 0.2)")
        if record.strategy == "gan-frozen":  # frozen heads train through the pixels to be attacked
            assert not any("cached" in note for note in record.notes)
    robust = {name: np.mean([r.robust_accuracy["0.2"] for r in run.results
                             if r.strategy == "scratch" and r.has_results])
              for name, run in (("plain", plain), ("trained", trained))}
    assert robust["trained"] > robust["plain"], robust
    assert "adversarial training (FGSM" in trained.files["report.md"].read_text()


@pytest.mark.slow
def test_saved_models_are_plain_keras_models_with_the_same_predictions(runs):
    _, trained = runs
    record = next(r for r in trained.results if r.strategy == "scratch" and r.seed == 0)
    model = keras.saving.load_model(record.model_file)
    assert type(model).__name__ == "Functional"
    data = gt.load_dataset("digits", image_size=32, seed=0)
    predicted = model.predict(data.test.x.astype("float32"), verbose=0).argmax(-1)
    assert np.mean(predicted == data.test.y) == pytest.approx(record.test_accuracy)


def test_robust_comparisons_cover_a_known_difference():
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(8):
        base = 0.3 + rng.normal(0, 0.02)
        for name, shift in (("scratch", 0.0), ("gan-frozen", 0.1), ("random-frozen", 0.1)):
            value = base + shift + rng.normal(0, 0.01)
            rows.append(StrategyResult(name, 10, seed=seed, test_accuracy=0.9,
                                       robust_accuracy={0: 0.9, 0.1: value}))
    compared = {(c["kind"], c["strategy"], c["other"]): c for c in robust_comparisons(rows)}
    gain = compared[("pretraining", "gan-frozen", "scratch")]
    assert gain["ci_low"] < 0.1 < gain["ci_high"] and gain["significant"]
    control = compared[("control", "gan-frozen", "random-frozen")]
    assert control["ci_low"] < 0 < control["ci_high"] and not control["significant"]
    assert "not significant" in render_robust_comparison(control, "PGD-20")
    assert [r["epsilon"] for r in robustness_summary(rows)][:2] == [0.0, 0.1]


def test_no_attack_means_no_robustness_section(tmp_path):
    rows = [StrategyResult("scratch", 10, seed=s, test_accuracy=0.8) for s in range(2)]
    files = gt.write_report(rows, tmp_path)
    assert "Robustness" not in files["report.md"].read_text()
    assert json.loads(files["results.json"].read_text())["robustness"]["comparisons"] == []
