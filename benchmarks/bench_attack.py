"""How long an attack takes: FGSM and PGD-20 on 1,000 images against one clean pass, in one process.

The classifier is the digits preset's (the DCGAN trunk at width 0.5, 32 px, a flattened head),
trained here on the digits' training split for a few epochs; the images are 1,000 digits (the test
split has 360, so the training split's images are used too: speed does not depend on which images).
It prints the seconds of a clean prediction over the images (the baseline), of FGSM and of PGD-20
(the attack ``gantransfer attack`` runs by default), their ratio to the baseline, and the accuracy
under each at epsilon 0.1; then PGD again with the input gradient uncompiled (eager), the
reference for what compiling it (``jax.jit`` on JAX, ``tf.function`` on TensorFlow) gains. It runs
on the backend Keras runs on (``KERAS_BACKEND``).

Usage:
    python benchmarks/bench_attack.py [--images 1000] [--steps 20] [--epsilon 0.1] [--epochs 5]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import gantransfer as gt  # first: it picks Keras's backend before Keras is imported
import keras
import numpy as np
from gantransfer import backend
from gantransfer.transfer_learning.trunks import TrunkArchitecture


def eager_input_gradient(model, loss):
    """The reference: the same gradient, uncompiled (each call traced through ``value_and_gradient``
    eagerly, as the attacks computed it before ``backend.input_gradient``)."""
    def gradient(x, labels):
        def total(inputs):
            values = loss(keras.ops.convert_to_tensor(labels), model(inputs, training=False))
            return keras.ops.sum(values), values

        (_, values), grad = backend.value_and_gradient(total, x, has_aux=True)
        return (np.array(keras.ops.convert_to_numpy(values)),
                np.array(keras.ops.convert_to_numpy(grad)))

    return gradient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--width", type=float, default=0.5)
    args = parser.parse_args()

    data = gt.load_dataset("digits", image_size=32, seed=0)
    keras.utils.set_random_seed(0)
    model = gt.build_classifier(gt.build_gan_trunk(TrunkArchitecture(32, 1, width=args.width)), 10,
                                kind="flatten", trunk_training=None)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.train.x.astype("float32"), data.train.y, epochs=args.epochs, batch_size=64,
              verbose=0)
    x = np.concatenate([data.test.x, data.train.x])[:args.images].astype("float32")
    y = np.concatenate([data.test.y, data.train.y])[:args.images]

    # Warm: every batch shape the timed runs see, so no timing below includes compiling.
    gt.robust_accuracy(model, x, y, [0.0, args.epsilon], gt.AttackSettings("fgsm"))
    timings = {}
    started = time.perf_counter()
    (clean,) = gt.robust_accuracy(model, x, y, [0.0])
    timings["clean pass"] = (time.perf_counter() - started, clean.accuracy)
    for name, settings in (("FGSM", gt.AttackSettings("fgsm")),
                           (f"PGD-{args.steps}", gt.AttackSettings("pgd", steps=args.steps))):
        started = time.perf_counter()
        (point,) = gt.robust_accuracy(model, x, y, [args.epsilon], settings)
        timings[name] = (time.perf_counter() - started, point.accuracy)
    with mock.patch.object(backend, "input_gradient", eager_input_gradient):
        started = time.perf_counter()
        (point,) = gt.robust_accuracy(model, x, y, [args.epsilon],
                                      gt.AttackSettings("pgd", steps=args.steps))
        timings[f"PGD-{args.steps}, eager"] = (time.perf_counter() - started, point.accuracy)
    base = timings["clean pass"][0]
    print(f"{len(y)} images, ε = {args.epsilon:g}, classifier of {model.count_params():,} "
          f"parameters, on Keras's {keras.config.backend()} backend")
    for name, (seconds, accuracy) in timings.items():
        print(f"{name:>12}: {seconds:6.2f} s  ({seconds / base:5.1f}x the clean pass), "
              f"accuracy {100 * accuracy:.1f}%")


if __name__ == "__main__":
    main()
