"""DCGAN in Keras, as in the TensorFlow DCGAN tutorial, with depth and width as knobs.

The generator maps a latent vector (and, when conditional, a condition vector) through a
dense layer to 4x4 feature maps, then doubles the size with transposed convolutions (or,
with ``upsample="resize"``, nearest-neighbour resizing and a convolution) until the image
size (with ``refine``, the last doubling makes feature maps and a 3x3 convolution paints the
image from them); the discriminator halves it with strided convolutions (with
``spectral_norm``, each of its weights spectrally normalised). Images are in [-1, 1].
``DCGAN.train_step`` updates both networks on every batch (TensorFlow backend); with
``average``, the generator ends training with the moving average of its weights.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from .architecture import BASE, GanModel, depth_for

__all__ = ["DCGAN", "GanModel", "build_discriminator", "build_generator", "depth_for"]


def build_generator(m: GanModel, size: int, conditions: int):
    depth = depth_for(size)
    latent = keras.Input((m.latent_dim,), name="latent")
    inputs = [latent]
    x = latent
    if conditions:
        condition = keras.Input((conditions,), name="condition")
        inputs.append(condition)
        embedded = _embedded(condition, m)
        x = keras.layers.Concatenate(name="latent_and_condition")([latent, embedded])
    filters = m.width * 2 ** (depth - 1)
    x = keras.layers.Dense(BASE * BASE * filters, use_bias=False, name="project")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.LeakyReLU(0.2, name="project_act")(x)
    x = keras.layers.Reshape((BASE, BASE, filters), name="to_maps")(x)
    steps = [filters // 2 ** (i + 1) for i in range(depth - 1)] + ([m.refine] if m.refine else [])
    for i, filters in enumerate(steps):
        x = _doubled(x, filters, m.upsample, f"up_{i + 1}", use_bias=False)
        x = keras.layers.BatchNormalization(name=f"up_{i + 1}_bn")(x)
        if conditions and m.modulate:
            x = _modulated(x, embedded, filters, f"up_{i + 1}")
        x = keras.layers.LeakyReLU(0.2, name=f"up_{i + 1}_act")(x)
    if m.refine:
        image = keras.layers.Conv2D(3, 3, padding="same", activation="tanh", name="image")(x)
    else:
        image = _doubled(x, 3, m.upsample, "image", activation="tanh")
    return keras.Model(inputs if conditions else latent, image, name="generator")


def build_discriminator(m: GanModel, size: int, conditions: int):
    depth = depth_for(size)

    def weighted(layer):
        return keras.layers.SpectralNormalization(layer, name=f"{layer.name}_sn") if m.spectral_norm else layer

    image = keras.Input((size, size, 3), name="image")
    inputs = [image]
    x = image
    if conditions:
        condition = keras.Input((conditions,), name="condition")
        inputs.append(condition)
        embedded = _embedded(condition, m)
        plane = weighted(keras.layers.Dense(size * size, name="condition_plane"))(embedded)
        plane = keras.layers.Reshape((size, size, 1), name="condition_map")(plane)
        x = keras.layers.Concatenate(name="image_and_condition")([x, plane])
    filters = m.width
    for i in range(depth):
        x = weighted(keras.layers.Conv2D(filters, 4, strides=2, padding="same", name=f"down_{i + 1}"))(x)
        x = keras.layers.LeakyReLU(0.2, name=f"down_{i + 1}_act")(x)
        x = keras.layers.Dropout(m.dropout, name=f"down_{i + 1}_dropout")(x)
        filters *= 2
    x = keras.layers.Flatten(name="flatten")(x)
    logit = weighted(keras.layers.Dense(1, name="real"))(x)
    if conditions and m.projection:
        projected = weighted(keras.layers.Dense(x.shape[-1], use_bias=False, name="condition_projection"))(embedded)
        match = keras.layers.Dot(axes=1, name="condition_match")([x, projected])
        logit = keras.layers.Add(name="real_given_condition")([logit, match])
    if conditions and m.auxiliary:
        named = weighted(keras.layers.Dense(conditions, name="condition_named"))(x)
        return keras.Model(inputs, [logit, named], name="discriminator")
    return keras.Model(inputs if conditions else image, logit, name="discriminator")


def _doubled(x, filters: int, upsample: str, name: str, **options):
    """``x`` at twice the size with ``filters`` channels, the way ``upsample`` names."""
    if upsample == "resize":
        x = keras.layers.Resizing(2 * x.shape[1], 2 * x.shape[2], "nearest", name=f"{name}_resize")(x)
        return keras.layers.Conv2D(filters, 3, padding="same", name=name, **options)(x)
    return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name=name, **options)(x)


def _embedded(condition, m: GanModel):
    if not m.condition_embedding:
        return condition
    return keras.layers.Dense(m.condition_embedding, use_bias=False, name="condition_embedding")(condition)


def _modulated(x, condition, filters: int, name: str):
    """``x * (1 + scale) + shift``, both per channel and computed from the condition."""
    scale = keras.layers.Dense(filters, kernel_initializer="zeros", name=f"{name}_scale")(condition)
    shift = keras.layers.Dense(filters, kernel_initializer="zeros", name=f"{name}_shift")(condition)
    scale = keras.layers.Reshape((1, 1, filters), name=f"{name}_scale_map")(scale)
    shift = keras.layers.Reshape((1, 1, filters), name=f"{name}_shift_map")(shift)
    scaled = keras.layers.Multiply(name=f"{name}_scaled")([x, scale])
    return keras.layers.Add(name=f"{name}_modulated")([x, scaled, shift])


@keras.saving.register_keras_serializable(package="tinkerflow.dcgan")
class DCGAN(keras.Model):
    """Generator and discriminator trained against each other by :meth:`train_step`."""

    def __init__(self, generator, discriminator, latent_dim: int, label_smoothing: float = 0.0,
                 noise: float = 0.0, seed: int = 0, mismatch: float = 0.0, auxiliary: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.label_smoothing = label_smoothing
        self.noise = noise
        self.seed = seed
        self.mismatch = mismatch
        self.auxiliary = auxiliary
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.conditional = len(generator.inputs) > 1

    def compile(self, learning_rate: float = 2e-4, average: float = 0.0, **kwargs):
        super().compile(**kwargs)
        self.learning_rate, self.average = learning_rate, average
        self.d_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5, use_ema=bool(average),
                                                 ema_momentum=average or 0.99)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

    def get_compile_config(self):
        return {"learning_rate": self.learning_rate, "average": self.average}

    def fit(self, *args, **kwargs):
        """Train; with ``average``, the generator then takes its weights' moving average."""
        history = super().fit(*args, **kwargs)
        if self.average and self.g_optimizer.built:
            self.g_optimizer.finalize_variable_values(self.generator.trainable_variables)
        return history

    def compile_from_config(self, config):
        self.compile(**config)
        self.build_optimizers()

    def build_optimizers(self):
        """Create both optimizers' variables, so that saved optimizer state loads into them."""
        if not self.d_optimizer.built:
            self.d_optimizer.build(self.discriminator.trainable_variables)
        if not self.g_optimizer.built:
            self.g_optimizer.build(self.generator.trainable_variables)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def _noisy(self, images):
        if not self.noise:
            return images
        return images + self.noise * keras.random.normal(tf.shape(images), seed=self.seed_generator)

    def _judged(self, images, condition):
        """The discriminator's realness logit and, with an auxiliary head, its naming logits."""
        out = self.discriminator([self._noisy(images), condition] if self.conditional else self._noisy(images),
                                 training=True)
        return (out[0], out[1]) if isinstance(out, (list, tuple)) else (out, None)

    def train_step(self, data):
        real, condition = data if self.conditional else (data, None)
        batch = tf.shape(real)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        g_in = [z, condition] if self.conditional else z
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator(g_in, training=True)
            d_real, named_real = self._judged(real, condition)
            d_fake, named_fake = self._judged(fake, condition)
            d_loss = (self.loss_fn(tf.fill(tf.shape(d_real), 1.0 - self.label_smoothing), d_real)
                      + self.loss_fn(tf.zeros_like(d_fake), d_fake))
            if self.conditional and self.mismatch:
                other = tf.roll(condition, shift=1, axis=0)  # each image with its neighbour's condition
                d_wrong, _ = self._judged(real, other)
                d_loss += self.mismatch * self.loss_fn(tf.zeros_like(d_wrong), d_wrong)
            g_loss = self.loss_fn(tf.ones_like(d_fake), d_fake)
            if named_real is not None:
                present = tf.cast(condition > 0, named_real.dtype)
                d_loss += self.auxiliary * self.loss_fn(present, named_real)
                g_loss += self.auxiliary * self.loss_fn(present, named_fake)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": tf.reduce_mean(tf.sigmoid(d_real)),
                "d_fake": tf.reduce_mean(tf.sigmoid(d_fake))}

    def get_config(self):
        return {"generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
                "latent_dim": self.latent_dim, "label_smoothing": self.label_smoothing, "noise": self.noise,
                "seed": self.seed, "mismatch": self.mismatch, "auxiliary": self.auxiliary,
                "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
