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


@keras.saving.register_keras_serializable(package="gantransfer")
class DCGAN(keras.Model):
    """A generator and a discriminator trained adversarially with ``fit()``.

    Each step draws fresh noise, generates a batch, and updates both networks from the same forward
    pass (as the TensorFlow DCGAN tutorial does): the discriminator to tell real from generated
    images, the generator to make the discriminator call its images real (the non-saturating loss).
    Real and generated images go through the discriminator as separate batches, so BatchNorm
    statistics are never mixed, as Radford et al. recommend.

    Metrics: ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)) and ``d_fake`` (mean D(G(z))).

    Args:
        generator: Maps ``(batch, latent_dim)`` noise to images in [-1, 1].
        discriminator: Maps images to ``(batch, 1)`` real/fake logits.
        latent_dim: Length of z; read from the generator's input when omitted.
        seed: Seed of the model's own noise stream (a ``keras.random.SeedGenerator`` whose state
            checkpoints save, so a resumed run draws the same noise).

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
                 latent_dim: int | None = None, seed: int | None = None, **kwargs: Any) -> None:
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

    def compile(self, d_optimizer: keras.optimizers.Optimizer,
                g_optimizer: keras.optimizers.Optimizer, **kwargs: Any) -> None:
        """Sets one optimizer per network.

        Args:
            d_optimizer: Updates the discriminator.
            g_optimizer: Updates the generator.
            **kwargs: Passed to ``keras.Model.compile`` (e.g. ``jit_compile``).
        """
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def build_optimizers(self) -> None:
        """Creates both optimizers' variables now, so a checkpoint can be restored into them."""
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.discriminator.trainable_variables)
        if not self.g_optimizer.built:
            self.g_optimizer.build(self.generator.trainable_variables)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def sample_noise(self, batch_size) -> Any:
        """Draws ``(batch_size, latent_dim)`` standard-normal noise from the model's seed stream."""
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def adversarial_losses(self, real_logits, fake_logits) -> tuple[Any, Any]:
        """Returns ``(d_loss, g_loss)`` for one batch of real and one of generated logits."""
        real_logits = ops.cast(real_logits, "float32")
        fake_logits = ops.cast(fake_logits, "float32")
        d_loss = (self.loss_fn(ops.ones_like(real_logits), real_logits)
                  + self.loss_fn(ops.zeros_like(fake_logits), fake_logits))
        g_loss = self.loss_fn(ops.ones_like(fake_logits), fake_logits)
        return d_loss, g_loss

    def update_metrics(self, d_loss, g_loss, real_logits, fake_logits) -> dict[str, Any]:
        """Updates the trackers and returns their current values."""
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(ops.cast(real_logits, "float32"))))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(ops.cast(fake_logits, "float32"))))
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        return backend.gan_train_step(self, data)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "DCGAN":
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
