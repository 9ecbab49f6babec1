"""The DCGAN as a ``keras.Model``: trained with ``fit()``, its own ``train_step``.

Everything but the gradient step is backend-neutral (``keras.ops``, ``keras.random``). The step
itself needs the backend's autodiff: ``train_step`` hands it to :mod:`gantransfer.backend`, which
picks the module of ``keras.config.backend()`` and says which backends are supported.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from gantransfer import backend

ROTATIONS = 4  # quarter turns: 0, 90, 180 and 270 degrees
ROTATION_FEATURES = "head_flatten"  # the discriminator's layer the rotation head reads
GENERATOR_ROTATION_SHARE = 0.2  # SS-GAN's alpha / beta: the generator's share of the weight


def rotate_quarters(images, quarters) -> Any:
    """Each image of a ``(batch, side, side, channels)`` batch turned ``quarters[i]`` times by 90
    degrees, counter-clockwise.

    Example:
        >>> import numpy as np
        >>> image = np.arange(4, dtype="float32").reshape(1, 2, 2, 1)
        >>> batch = np.concatenate([image, image])
        >>> ops.convert_to_numpy(rotate_quarters(batch, np.array([0, 1])))[:, :, :, 0].tolist()
        [[[0.0, 1.0], [2.0, 3.0]], [[1.0, 3.0], [0.0, 2.0]]]
    """
    turned = [images if k == 0 else ops.rot90(images, k=k, axes=(1, 2)) for k in range(ROTATIONS)]
    choice = ops.one_hot(quarters, ROTATIONS, dtype=images.dtype)  # (batch, 4)
    return ops.einsum("bk,kbhwc->bhwc", choice, ops.stack(turned))


def _cross_entropy(labels, logits) -> Any:
    """The batch's mean binary cross-entropy, the same on one replica or many: a
    ``keras.losses.BinaryCrossentropy`` would divide it by the replica count under
    ``tf.distribute``, and the backend's step scales the losses it differentiates itself."""
    return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


class OptimizerPair(keras.optimizers.Optimizer):
    """A DCGAN's two optimizers as the one ``model.optimizer`` Keras's trainers carry.

    ``fit`` keeps ``model.optimizer``'s variables in its training state (on JAX, the state a jitted
    step takes and returns), so this pair exposes both optimizers' variables, the discriminator's
    first. It applies nothing itself: the backend's GAN step updates each network with its own
    optimizer. ``iterations`` and ``learning_rate`` are the discriminator's, as callbacks read them.

    Example:
        >>> pair = OptimizerPair(keras.optimizers.Adam(), keras.optimizers.SGD())
        >>> d, g = keras.Variable([1.0]), keras.Variable([2.0])
        >>> pair.build_pair([d], [g])
        >>> [len(pair.d_optimizer.variables), len(pair.g_optimizer.variables), len(pair.variables)]
        [4, 2, 6]
    """

    def __init__(self, d_optimizer: keras.optimizers.Optimizer,
                 g_optimizer: keras.optimizers.Optimizer, name: str = "optimizer_pair") -> None:
        super().__init__(learning_rate=0.0, name=name)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        object.__setattr__(self, "_networks", ([], []))

    def build_pair(self, d_variables: list[Any], g_variables: list[Any]) -> None:
        """Creates both optimizers' variables for their own networks' weights."""
        # The networks' own weights, kept untracked: they are the model's, not optimizer state.
        object.__setattr__(self, "_networks", (list(d_variables), list(g_variables)))
        if not self.d_optimizer.built:
            self.d_optimizer.build(d_variables)
        if not self.g_optimizer.built:
            self.g_optimizer.build(g_variables)
        self.built = True

    def build(self, var_list: list[Any]) -> None:  # fit builds it with all of the model's weights
        raise RuntimeError("an OptimizerPair is built by DCGAN.build_optimizers, which gives each "
                           "optimizer its own network's weights")

    @property
    def variables(self) -> list[Any]:
        return [*self.d_optimizer.variables, *self.g_optimizer.variables]

    @property
    def iterations(self) -> Any:
        return self.d_optimizer.iterations

    @property
    def learning_rate(self) -> Any:
        return self.d_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:  # the base class sets it once, in __init__
        if hasattr(self, "d_optimizer"):
            self.d_optimizer.learning_rate = value

    def finalize_variable_values(self, var_list: list[Any]) -> None:
        """Each optimizer finalizes its own network's weights, not ``var_list`` (``fit`` passes
        all the model's): e.g. with ``use_ema`` it writes its moving averages into them."""
        for optimizer, variables in zip((self.d_optimizer, self.g_optimizer), self._networks):
            optimizer.finalize_variable_values(variables)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name,
                "d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer)}


@keras.saving.register_keras_serializable(package="gantransfer")
class DCGAN(keras.Model):
    """A generator and a discriminator trained adversarially with ``fit()``.

    Each step draws fresh noise, generates a batch, and updates both networks from the same forward
    pass (as the TensorFlow DCGAN tutorial does): the discriminator to tell real from generated
    images, the generator to make the discriminator call its images real (the non-saturating loss).
    Real and generated images go through the discriminator as separate batches, so BatchNorm
    statistics are never mixed, as Radford et al. recommend.

    With ``rotation_weight`` > 0 the discriminator also learns rotation self-supervision (SS-GAN,
    Chen et al. 2019): a ``rotation_head`` (4 logits) reads the discriminator's flattened features
    of images rotated by 0, 90, 180 or 270 degrees (a quarter of the batch each) and says which.
    The discriminator's loss adds ``rotation_weight`` times that cross-entropy on real images; the
    generator's adds ``0.2 * rotation_weight`` times it on generated images (the paper's alpha =
    0.2, beta = 1). The task keeps D's features about the image's content, where the adversarial
    game alone lets them drift; the discriminator itself, and what transfers, are unchanged.

    Metrics: ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)) and ``d_fake`` (mean D(G(z))); with
    rotation, ``d_rotation``: the rotation head's accuracy on the rotated real images.

    Args:
        generator: Maps ``(batch, latent_dim)`` noise to images in [-1, 1].
        discriminator: Maps images to ``(batch, 1)`` real/fake logits.
        latent_dim: Length of z; read from the generator's input when omitted.
        seed: Seed of the model's own noise stream (a ``keras.random.SeedGenerator`` whose state
            checkpoints save, so a resumed run draws the same noise).
        rotation_weight: The weight of the rotation loss on the discriminator; 0 is off.

    Example:
        >>> from gantransfer.gan.models import build_generator, build_discriminator
        >>> gan = DCGAN(build_generator(28, 1, latent_dim=8, width=0.125),
        ...             build_discriminator(28, 1, width=0.125), seed=0)
        >>> gan.compile(d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        ...             g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
        >>> images = keras.random.uniform((8, 28, 28, 1), -1, 1, seed=1)
        >>> history = gan.fit(images, batch_size=4, epochs=1, verbose=0)
        >>> sorted(history.history)
        ['d_fake', 'd_loss', 'd_real', 'g_loss']
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model,
                 latent_dim: int | None = None, seed: int | None = None,
                 rotation_weight: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(latent_dim or generator.input_shape[-1])
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.rotation_weight = float(rotation_weight)
        self.rotation_head: keras.layers.Layer | None = None
        if self.rotation_weight > 0:
            flat = discriminator.get_layer(ROTATION_FEATURES).output
            self.features = keras.Model(discriminator.inputs, flat, name="discriminator_features")
            self.rotation_head = keras.layers.Dense(
                ROTATIONS, kernel_initializer=keras.initializers.RandomNormal(stddev=0.02),
                name="rotation_head", dtype="float32")
            self.rotation_head.build(flat.shape)
            self.d_rotation_tracker = keras.metrics.Mean(name="d_rotation")
        # Both networks (and the rotation head) are built; so is the model, which fit on JAX would
        # otherwise try to build by calling it on a batch of images.
        self.built = True

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer, **kwargs: Any) -> None:
        """Sets one optimizer per network, and builds both: ``model.optimizer`` is their
        :class:`OptimizerPair`, which is how ``fit``'s state carries them.

        Under the ``mixed_float16`` dtype policy each is wrapped in a ``LossScaleOptimizer``.

        Args:
            d_optimizer: Updates the discriminator.
            g_optimizer: Updates the generator.
            **kwargs: Passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        if self.discriminator.dtype_policy.name == "mixed_float16":
            # float16 gradients underflow: each optimizer scales its network's loss up, and its
            # gradients back down, skipping a step whose gradients are not finite (as Keras's own
            # compile does for a model's one optimizer).
            d_optimizer = keras.optimizers.LossScaleOptimizer(d_optimizer)
            g_optimizer = keras.optimizers.LossScaleOptimizer(g_optimizer)
        # The pair itself is never wrapped: it applies nothing.
        super().compile(optimizer=OptimizerPair(d_optimizer, g_optimizer), auto_scale_loss=False,
                        **kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.build_optimizers()

    @property
    def d_trainable_weights(self) -> list[Any]:
        """What the discriminator's optimizer updates: D, and the rotation head when there is one."""
        head = [] if self.rotation_head is None else self.rotation_head.trainable_weights
        return [*self.discriminator.trainable_weights, *head]

    def build_optimizers(self) -> None:
        """Creates both optimizers' variables now, so a checkpoint can be restored into them."""
        self.optimizer.build_pair(self.d_trainable_weights,
                                  self.generator.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        trackers = [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker,
                    self.d_fake_tracker]
        return trackers + ([self.d_rotation_tracker] if self.rotation_head is not None else [])

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def sample_noise(self, batch_size) -> Any:
        """Draws ``(batch_size, latent_dim)`` standard-normal noise from the model's seed stream."""
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def adversarial_losses(self, real_logits, fake_logits) -> tuple[Any, Any]:
        """Returns ``(d_loss, g_loss)`` for one batch of real and one of generated logits."""
        real_logits = ops.cast(real_logits, "float32")
        fake_logits = ops.cast(fake_logits, "float32")
        d_loss = (_cross_entropy(ops.ones_like(real_logits), real_logits)
                  + _cross_entropy(ops.zeros_like(fake_logits), fake_logits))
        g_loss = _cross_entropy(ops.ones_like(fake_logits), fake_logits)
        return d_loss, g_loss

    def rotation_losses(self, real, fake) -> tuple[Any, Any, Any]:
        """The rotation task's ``(d_loss, g_loss, real accuracy)``, weighted, for one batch.

        Image ``i`` of each batch is rotated by ``i mod 4`` quarter turns, so every batch holds
        the four rotations in equal shares (batches are shuffled, so no image keeps one rotation).
        """
        labels = ops.arange(ops.shape(real)[0]) % ROTATIONS
        real_logits = self._rotation_logits(rotate_quarters(real, labels))
        fake_logits = self._rotation_logits(rotate_quarters(fake, labels))
        loss = keras.losses.sparse_categorical_crossentropy
        d_loss = ops.mean(loss(labels, real_logits, from_logits=True))
        g_loss = ops.mean(loss(labels, fake_logits, from_logits=True))
        accuracy = ops.mean(ops.cast(ops.argmax(real_logits, axis=-1) == labels, "float32"))
        weight = self.rotation_weight
        return weight * d_loss, GENERATOR_ROTATION_SHARE * weight * g_loss, accuracy

    def _rotation_logits(self, images) -> Any:
        return ops.cast(self.rotation_head(self.features(images, training=True)), "float32")

    def step_losses(self, data, noise) -> tuple[Any, Any, dict[str, Any]]:
        """One step's forward pass: ``(d_loss, g_loss, measures)``, backend-neutral.

        The backend's step (:func:`gantransfer.backend.gan_train_step`) calls this inside its
        autodiff, differentiates ``d_loss`` with respect to :attr:`d_trainable_weights` and
        ``g_loss`` with respect to the generator's, then hands ``measures`` (tensors) to
        :meth:`update_metrics`. A subclass with other losses overrides both, and no backend changes.

        Args:
            data: The batch ``fit`` gives: real images, or a tuple whose first element is them.
            noise: ``(batch, latent_dim)`` noise for the generator, drawn by the backend's step.
        """
        real = self.real_batch(data)
        fake = self.generator(noise, training=True)
        real_logits = self.discriminator(real, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss, g_loss = self.adversarial_losses(real_logits, fake_logits)
        measures = {"real_logits": real_logits, "fake_logits": fake_logits}
        if self.rotation_head is not None:
            d_rotation, g_rotation, measures["rotation_accuracy"] = self.rotation_losses(real, fake)
            d_loss, g_loss = d_loss + d_rotation, g_loss + g_rotation
        return d_loss, g_loss, measures

    @staticmethod
    def real_batch(data) -> Any:
        """The real images of a batch ``fit`` gives, whose size the generator's noise matches."""
        return data[0] if isinstance(data, (tuple, list)) else data

    def update_metrics(self, d_loss, g_loss, measures: dict[str, Any]) -> dict[str, Any]:
        """Updates the trackers from one step's losses and :meth:`step_losses`'s ``measures``, and
        returns their current values."""
        if "rotation_accuracy" in measures:
            self.d_rotation_tracker.update_state(measures["rotation_accuracy"])
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        for tracker, logits in ((self.d_real_tracker, measures["real_logits"]),
                                (self.d_fake_tracker, measures["fake_logits"])):
            tracker.update_state(ops.mean(ops.sigmoid(ops.cast(logits, "float32"))))
        return {m.name: m.result() for m in self.metrics}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None) -> None:
        """Nothing to build: compile built the networks, trackers and both optimizers.

        Keras's TensorFlow trainer calls this as ``fit`` starts, to build a model's metrics from one
        batch reduced across replicas; under ``MultiWorkerMirroredStrategy`` that reduction fails
        on the tuple Keras batches come in (Keras 3.15).
        """

    def train_step(self, *args):
        # (data) on TensorFlow, (state, data) on JAX: the backend's trainer decides, the seam obeys.
        return backend.gan_train_step(self, *args)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "rotation_weight": self.rotation_weight,
        })
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DCGAN":
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
