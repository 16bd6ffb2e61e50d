"""The DCGAN's architecture knobs (``model=dcgan``, :class:`GanModel`) and the depth an image
size needs. No Keras here: the experiment's config is built and checked without it; the
networks are in :mod:`.model`."""

from __future__ import annotations

from dataclasses import dataclass

from tinkerflow.core import DataError, knob

BASE = 4


@dataclass
class GanModel:
    name: str = knob("dcgan", help="model=dcgan: the tutorial's DCGAN")
    latent_dim: int = knob(64, min=1, help="size of the latent vector")
    width: int = knob(64, min=4, help="filters of the discriminator's first convolution; the generator mirrors it")
    conditional: bool = knob(False, help="condition both networks on the data set's classes or attributes")
    label_smoothing: float = knob(0.1, min=0.0, max=0.5, help="real labels become 1 - this for the discriminator")
    noise: float = knob(0.0, min=0.0, max=1.0, help="std of Gaussian noise added to the discriminator's inputs")
    dropout: float = knob(0.3, min=0.0, max=0.9, help="dropout in the discriminator")
    learning_rate: float = knob(2e-4, gt=0.0, help="Adam's learning rate, both networks (beta_1 0.5)")
    condition_embedding: int = knob(0, min=0, help="project the condition to this size first (0: use it as it is)")
    mismatch: float = knob(0.0, min=0.0, max=2.0,
                           help="weight of real images shown with another image's condition as fakes: the "
                                "discriminator must check the condition, not only the image (conditional only)")
    auxiliary: float = knob(0.0, min=0.0, max=10.0,
                            help="weight of an auxiliary task: the discriminator also names the condition's "
                                 "non-zero entries (learned on real images) and the generator is scored on how "
                                 "well its images let it (conditional only; AC-GAN)")
    projection: bool = knob(False, help="the discriminator's realness also includes the inner product of its "
                                        "image features with a learned projection of the condition "
                                        "(conditional only; projection discriminator)")
    modulate: bool = knob(False, help="the condition also scales and shifts the feature maps after every "
                                      "upsampling step of the generator, not only its first layer "
                                      "(conditional only; FiLM)")
    upsample: str = knob("transposed", choices=["transposed", "resize"],
                         help="how the generator doubles its maps: a strided transposed convolution (the "
                              "tutorial's), or nearest-neighbour resizing and a 3x3 convolution (no checkerboard)")
    refine: int = knob(0, min=0, max=512,
                       help="the last doubling makes this many maps at the image's full size, and a 3x3 "
                            "convolution turns them into the image (0: the last doubling makes the image)")
    spectral_norm: bool = knob(False, help="divide each of the discriminator's weight matrices by its largest "
                                           "singular value (spectral normalisation: a smoother critic)")
    average: float = knob(0.0, min=0.0, max=0.9999,
                          help="paint with an exponential moving average of the generator's weights, updated "
                               "every step with this momentum (0: its last weights)")


def depth_for(size: int) -> int:
    """Upsampling steps from 4x4 to ``size``; refuses sizes that are not 4 * 2^k (k >= 1)."""
    depth = 0
    while BASE * 2 ** depth < size:
        depth += 1
    if BASE * 2 ** depth != size or depth < 1:
        valid = ", ".join(str(BASE * 2 ** k) for k in range(1, 7))
        raise DataError(f"experiment.image_size={size} cannot be produced by doubling 4x4 feature maps; "
                        f"expected one of: {valid}")
    return depth
