"""What a family declares about itself for analysis: ``FamilyFigures`` (depth, receptive field,
FLOPs per sample, activation memory, a measurement of the receptive field by gradients), and
the shared pieces the families' ``figures()`` methods use. The definitions of each figure are
in ``samplenet.analysis.model``'s docstring."""
import math
from typing import Callable, NamedTuple, Optional

import tensorflow as tf

from samplenet.ops.receptive_field import measured_receptive_field

# The weakest gradient that reaches the first input of the deepest preset's stack of gated
# blocks is ~1e-52 at initialisation, below float32's range; scaling the objective (a change
# of units, dependencies are unchanged) lifts it to ~1e-22 while the largest stays ~1e29.
GRADIENT_SCALE = 2.0 ** 100
BACKWARD_FACTOR = 3   # forward + backward ~ 3 x forward


class FamilyFigures(NamedTuple):
    """What a family's ``figures()`` computes from a built model."""

    depth: int
    depth_rule: str
    receptive_field: Optional[int]
    frame_context: Optional[int]
    flops_per_sample: dict
    activation_floats: float      # floats per input sample kept for backprop
    default_seq_len: int          # samples per training sequence
    measure: Callable[[], int]    # the receptive field (or frame context) by gradients
    notes: tuple


class SuggestedStructure(NamedTuple):
    """A family's answer to "which structure covers ``span`` samples?" (``suggest_structure``):
    ``choices`` (config keys and values), ``covered`` (samples the result covers: receptive
    field or top frame) and ``reasons`` (one sentence per choice)."""

    choices: dict
    covered: int
    reasons: list


def milliseconds(samples, rate):
    """``"12.5 ms"``: ``samples`` at ``rate`` Hz, for the reasons of a suggestion."""
    return f"{1000.0 * samples / rate:.1f} ms"


def measured_span(fn, length, position=None, channels=None):
    """``measured_receptive_field`` of ``fn`` with its outputs scaled by GRADIENT_SCALE (one
    random trial)."""
    return measured_receptive_field(lambda x: GRADIENT_SCALE * tf.cast(fn(x), tf.float32),
                                    length, position=position, channels=channels,
                                    num_trials=1)


def upsampler_macs(upsampler):
    """Multiply-adds per sample of a ConditioningUpsampler (stage ``i`` runs once per input
    frame, ``prod(factors[:i]) / hop`` frames per sample)."""
    macs, frames_per_sample = 0.0, 1.0 / upsampler.hop
    for factor, kernel in zip(upsampler.factors, upsampler.kernels):
        macs += math.prod(kernel.shape) * frames_per_sample
        frames_per_sample *= factor
    return macs


def convolution_walk(convolutions, jump):
    """``(multiply-adds per audio sample, activation floats per audio sample, receptive
    field)`` of ``(layer, transposed)`` convolutions run in sequence from ``jump`` audio
    samples per input step."""
    macs = floats = 0.0
    receptive = 1
    for layer, transposed in convolutions:
        width = layer.kernel.shape[0]
        layer_macs = math.prod(layer.kernel.shape)
        if transposed:
            macs += layer_macs / jump
            jump /= layer.strides
        else:
            receptive += layer.dilation_rate * (width - 1) * jump
            jump *= layer.strides
            macs += layer_macs / jump
        floats += 2.0 * layer.filters / jump
    return macs, floats, int(receptive)
