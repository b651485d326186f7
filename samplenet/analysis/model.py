"""Measure a model: parameters per layer, depth, receptive field, FLOPs per sample, memory.

Definitions (one function per family computes them from the built model's configuration):

- parameters: ``model.count_params()`` (every weight, trainable or not, e.g. codebook EMA
  statistics); the per-layer table lists each direct sublayer's ``count_params()`` plus a
  "(model)" row for weights the model holds itself, and sums to the total.
- depth: weight layers in sequence on the longest input-to-output path.
  SampleRNN: the top tier's input projection, then per frame tier its RNN layers and its
  upsampling projection, then the sample MLP's layers after the conditioning is added (its
  hidden layers and output): ``1 + tiers * (rnn_layers + 1) + mlp_layers``.
  WaveNet: input convolution + gated blocks (a block's dilated convolution and 1x1 projection
  count as one layer, as in the paper) + the 2 output layers. Linear AR: 1. Codec: every
  convolution of the encoder and decoder (residual units' two convolutions each; the skip
  paths are shorter). gamma = parameters / depth.
- receptive field (samples): the model's formula; ``receptive_field_measured`` is the span of
  inputs with a nonzero gradient (``samplenet.ops.receptive_field``, one random trial, the
  objective scaled by ``GRADIENT_SCALE`` so that far gradients of deep stacks do not
  underflow). SampleRNN is recurrent
  (unbounded receptive field, reported as None); its ``frame_context`` is the top frame size,
  the samples the top tier reads at once, and the measured span is that of the first output
  of a subsequence from the initial state (which sees exactly the top frame before it). For
  the codec it is the encoder's: the audio one code frame depends on (measured on a fresh
  encoder of the same configuration whose residual branches do not start at zero).
- FLOPs per sample: 2 x the multiply-adds of the matmuls and convolutions (embedding and
  table lookups, nonlinearities, norms and losses are not counted).
  ``generation``: per generated sample. WaveNet with its per-layer caches runs every layer
  once per sample; SampleRNN runs tier ``k`` once per frame (its per-frame cost / frame size)
  and its MLP's window projection is a lookup table (no multiplies; the table itself is built
  once per chunk). ``training``: forward plus backward (taken as 3 x forward) per predicted
  sample of a training batch, including the context a window recomputes (WaveNet, linear AR);
  SampleRNN's MLP trains through the same lookup table, built once per batch (its
  ``frame_size x q_levels x emb_size x dim`` multiply-adds, and their backward, are shared by
  the batch's targets and left out).
  Codec: ``encode`` (encoder + nearest-code search), ``decode``, and ``training`` per audio
  sample (the adversarial discriminator and the spectral losses are not counted).
- weight memory: bytes of all weights. Activation memory (an estimate of what backprop keeps,
  float32): ``4 bytes x batch x seq_len x F`` where ``F`` is the floats per input sample that
  the layers output: WaveNet ``E + R + blocks (5D + 2S + 2R) + 3S + 2Q`` (E input encoding,
  R residual, D dilation, S skip channels, Q levels); SampleRNN ``E + 2 H M + 2 Q + sum_k
  (F_k + H + L (2g + 1) H + r_k H) / F_k`` (H dim, M MLP layers, L RNN layers, g gates,
  F_k frame size, r_k upsampling ratio); linear AR 3; codec ``1 + 2 sum_convs C_out / J``
  (J: input samples per output step). ``training_memory_bytes`` adds 4 x the weights (weights,
  gradients, two Adam moments). Real use is higher by TensorFlow's temporaries.
"""
import dataclasses
import json
import math
from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from samplenet import config as schema
from samplenet.models.base import AudioModel
from samplenet.ops.receptive_field import measured_receptive_field
from samplenet.validation import check_positive_int

# Scale of the measured outputs: the gradient on an input 5000 samples back through 50 gated
# blocks is ~1e-52 at initialisation, below float32's range; scaling the objective (a change
# of units, dependencies are unchanged) lifts it to ~1e-22 while the largest stays ~1e29.
GRADIENT_SCALE = 2.0 ** 100
FLOAT_BYTES = 4
OPTIMIZER_COPIES = 4  # weights, gradients, Adam's two moments
BACKWARD_FACTOR = 3   # forward + backward ~ 3 x forward


class FamilyFigures(NamedTuple):
    """What a family function computes from a built model (see the module docstring)."""

    depth: int
    depth_rule: str
    receptive_field: Optional[int]
    frame_context: Optional[int]
    flops_per_sample: dict
    activation_floats: float      # floats per input sample kept for backprop
    default_seq_len: int          # samples per training sequence
    measure: Callable[[], int]    # the receptive field (or frame context) by gradients
    notes: tuple


def _measured_span(fn, length, position=None, channels=None):
    """``measured_receptive_field`` of ``fn`` with its outputs scaled by GRADIENT_SCALE."""
    return measured_receptive_field(lambda x: GRADIENT_SCALE * tf.cast(fn(x), tf.float32),
                                    length, position=position, channels=channels,
                                    num_trials=1)


# ------------------------------------------------------------------------------ WaveNet
def _upsampler_macs(upsampler):
    """Multiply-adds per sample of a ConditioningUpsampler (stage ``i`` runs once per input
    frame, ``prod(factors[:i]) / hop`` frames per sample)."""
    macs, frames_per_sample = 0.0, 1.0 / upsampler.hop
    for factor, kernel in zip(upsampler.factors, upsampler.kernels):
        macs += math.prod(kernel.shape) * frames_per_sample
        frames_per_sample *= factor
    return macs


def wavenet_figures(model):
    R, D, S, Q = (model.residual_channels, model.dilation_channels, model.skip_channels,
                  model.q_levels)
    encoded = R if model.embed_inputs else Q
    local = model.local_condition_channels
    num_blocks = len(model.layer_dilations)
    input_macs = model.input_width * encoded * R
    block_macs = sum(model.filter_width * R * 2 * D + D * (S + (R if i < num_blocks - 1 else 0))
                     + local * 2 * D for i in range(num_blocks))
    global_macs = num_blocks * R * 2 * D if model.num_classes else 0
    upsampler_macs = _upsampler_macs(model.upsampler) if local else 0.0
    head_macs = S * S + S * Q
    options = model.data_options()
    context, target_len = options["context"], options["target_len"]
    per_position = input_macs + block_macs + upsampler_macs
    forward = per_position * (context + target_len - 1) / target_len + head_macs
    label = tf.zeros((1, R)) if model.num_classes else None
    length = model.receptive_field + 16

    def logits(x):
        # Inputs like the real ones (a softmax is a soft one-hot; embeddings are small), so
        # that deep stacks do not saturate their gates and zero a far gradient by accident.
        x = 0.05 * x if model.embed_inputs else tf.nn.softmax(x, axis=-1)
        conditioning = tf.zeros((1, length, local)) if local else None
        return model.logits_from_encoded(x, label, conditioning, output_from=length - 1)

    def measure():
        return _measured_span(logits, length, position=0, channels=encoded)

    return FamilyFigures(
        depth=1 + num_blocks + 2,
        depth_rule=f"input conv + {num_blocks} gated blocks + 2 output layers",
        receptive_field=model.receptive_field, frame_context=None,
        flops_per_sample={"generation": 2.0 * (per_position + global_macs + head_macs),
                          "training": 2.0 * BACKWARD_FACTOR * forward},
        activation_floats=encoded + R + num_blocks * (5 * D + 2 * S + 2 * R) + 3 * S + 2 * Q
        + local,
        default_seq_len=context + target_len, measure=measure,
        notes=(f"a training window recomputes {context} context samples for {target_len} "
               f"targets",))


# ---------------------------------------------------------------------------- SampleRNN
def samplernn_onehot_logits(model, onehot, label=None):
    """``model.call``'s logits (from the initial state) as a differentiable function of
    one-hot samples ``(batch, overlap + length, q_levels)`` (and class ids ``(batch,)`` when
    ``num_classes`` > 0): the tiers read the one-hot levels scaled to [-2, 2], the MLP their
    embeddings. Used to measure dependencies by gradients; equal to ``model.call`` on the
    matching codes."""
    mlp = model.sample_mlp
    values = tf.linspace(-2.0, 2.0, model.q_levels)
    scaled = tf.tensordot(onehot, values, axes=1)
    batch, length = tf.shape(onehot)[0], onehot.shape[1] - model.overlap
    conditioning = None
    if model.num_classes:
        conditioning = tf.broadcast_to(tf.gather(model.class_embedding, label)[:, None, :],
                                       [batch, length // model.overlap, model.dim])
    for k in reversed(range(len(model.tiers))):
        size = model.frame_sizes[k]
        frames = tf.reshape(scaled[:, model.overlap - size: model.overlap - size + length],
                            [batch, length // size, size])
        conditioning, _ = model.tiers[k](frames, conditioning)
    first = model.overlap - model.frame_sizes[0]
    embedded = tf.tensordot(onehot[:, first: model.overlap + length - 1], mlp.embedding,
                            axes=1)
    kernel = tf.reshape(mlp.window_projection.kernel(),
                        [mlp.frame_size, mlp.emb_size, mlp.dim])
    hidden = tf.nn.relu(tf.nn.conv1d(embedded, kernel, stride=1, padding="VALID")
                        + mlp.window_projection.b + conditioning)
    for layer in mlp.hidden:
        hidden = tf.nn.relu(layer(hidden))
    return mlp.output_projection(hidden)


def samplernn_figures(model):
    H, Q, L = model.dim, model.q_levels, model.num_rnn_layers
    gates = 4 if model.rnn_type == "lstm" else 3
    tier_macs = tier_floats = 0.0
    for tier in model.tiers:
        size, ratio = tier.frame_size, tier.upsample_ratio
        rnn = sum(((2 * H if model.skip_connections and layer else H) + H) * gates * H
                  for layer in range(L))
        tier_macs += (size * H + rnn + H * ratio * H) / size
        tier_floats += (size + H + L * (2 * gates + 1) * H + ratio * H) / size
    mlp = model.sample_mlp
    head_macs = (mlp.mlp_layers - 1) * H * H + H * Q
    top = model.frame_sizes[-1]
    length = model.overlap + top

    label = tf.zeros((1,), tf.int32) if model.num_classes else None

    def measure():
        return _measured_span(lambda x: samplernn_onehot_logits(model, x, label), length,
                              position=0, channels=Q)

    return FamilyFigures(
        depth=1 + len(model.tiers) * (L + 1) + mlp.mlp_layers,
        depth_rule=f"top input projection + {len(model.tiers)} tiers x ({L} RNN + "
                   f"upsampling) + {mlp.mlp_layers} MLP layers",
        receptive_field=None, frame_context=top,
        flops_per_sample={"generation": 2.0 * (tier_macs + head_macs),
                          "training": 2.0 * BACKWARD_FACTOR * (tier_macs + head_macs)},
        activation_floats=mlp.emb_size + 2 * H * mlp.mlp_layers + 2 * Q + tier_floats,
        default_seq_len=model.seq_len, measure=measure,
        notes=("recurrent: the receptive field is unbounded (the RNN state carries the "
               f"whole past); the top tier reads frames of {top} samples (frame_context)",))


# ---------------------------------------------------------------------------- linear AR
def linear_ar_figures(model):
    target_len = model.target_len
    length = model.order + 8
    return FamilyFigures(
        depth=1, depth_rule="one linear predictor", receptive_field=model.receptive_field,
        frame_context=None,
        flops_per_sample={"generation": 2.0 * model.order,
                          "training": 2.0 * BACKWARD_FACTOR * model.order
                          * (model.order + target_len) / target_len},
        activation_floats=3, default_seq_len=model.order + target_len,
        measure=lambda: _measured_span(lambda x: model({"audio": x}), length),
        notes=())


# -------------------------------------------------------------------------------- codec
def _seanet_convolutions(model):
    """The codec's convolutions in data-flow order: ``(layer, transposed)`` for the encoder
    and for the decoder."""
    encoder, decoder = model.encoder, model.decoder
    encoding = [encoder.input_conv]
    for block in encoder.blocks:
        for unit in block[:-1]:
            encoding += [unit.dilated, unit.pointwise]
        encoding.append(block[-1])
    encoding.append(encoder.output_conv)
    decoding = [(decoder.input_conv, False)]
    for block in decoder.blocks:
        decoding.append((block[0], True))
        for unit in block[1:]:
            decoding += [(unit.dilated, False), (unit.pointwise, False)]
    decoding.append((decoder.output_conv, False))
    return [(layer, False) for layer in encoding], decoding


def _walk(convolutions, jump):
    """``(multiply-adds per audio sample, activation floats per audio sample, receptive
    field)`` of convolutions run in sequence from ``jump`` audio samples per input step."""
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


def soundstream_figures(model):
    encoding, decoding = _seanet_convolutions(model)
    encoder_macs, encoder_floats, receptive = _walk(encoding, 1)
    decoder_macs, decoder_floats, _ = _walk(decoding, model.hop)
    search_macs = model.num_quantizers * model.codebook_size * model.latent_dim / model.hop
    hop = model.hop
    length = (-(-receptive // hop) + 1) * hop

    def measure():
        # The architecture's span, on a fresh encoder of the same configuration with every
        # residual branch live: zero-initialised branches (``zero_init_residual``) pass no
        # gradient to their inputs until trained.
        encoder = type(model.encoder).from_config({**model.encoder.get_config(),
                                                   "zero_init_residual": False})
        return _measured_span(encoder, length, position=length // hop - 1)

    return FamilyFigures(
        depth=len(encoding) + len(decoding),
        depth_rule=f"{len(encoding)} encoder + {len(decoding)} decoder convolutions",
        receptive_field=receptive, frame_context=None,
        flops_per_sample={"encode": 2.0 * (encoder_macs + search_macs),
                          "decode": 2.0 * decoder_macs,
                          "training": 2.0 * BACKWARD_FACTOR * (encoder_macs + search_macs
                                                               + decoder_macs)},
        activation_floats=1 + encoder_floats + decoder_floats,
        default_seq_len=model.segment_samples, measure=measure,
        notes=(f"receptive_field is the encoder's: the audio samples one code frame (every "
               f"{hop} samples) depends on",
               "training FLOPs leave out the discriminator and the spectral losses"))


FAMILY_FIGURES = {"wavenet": wavenet_figures, "samplernn": samplernn_figures,
                  "linear_ar": linear_ar_figures, "soundstream": soundstream_figures}


# ------------------------------------------------------------------------------ report
@dataclasses.dataclass
class ModelReport:
    """What ``analyze_model`` measured (definitions in the module docstring).

    ``layers`` is a list of ``(name, type, parameters)``. ``str(report)`` is a readable table,
    ``to_json()`` the JSON form of ``to_dict()``.
    """

    family: str
    preset: Optional[str]
    sample_rate: int
    parameters: int
    trainable_parameters: int
    layers: list
    depth: int
    depth_rule: str
    receptive_field: Optional[int]
    receptive_field_measured: Optional[int]
    frame_context: Optional[int]
    flops_per_sample: dict
    weight_bytes: int
    activation_bytes: int
    batch_size: int
    seq_len: int
    notes: list

    @property
    def gamma(self):
        """Parameters per layer of depth."""
        return self.parameters / self.depth

    @property
    def training_memory_bytes(self):
        """Activations plus weights, gradients and Adam's two moments."""
        return self.activation_bytes + OPTIMIZER_COPIES * self.weight_bytes

    def _ms(self, samples):
        return None if samples is None else 1000.0 * samples / self.sample_rate

    def to_dict(self):
        span = "frame_context" if self.frame_context is not None else "receptive_field"
        return {
            "family": self.family, "preset": self.preset, "sample_rate": self.sample_rate,
            "parameters": self.parameters, "trainable_parameters": self.trainable_parameters,
            "depth": self.depth, "depth_rule": self.depth_rule, "gamma": self.gamma,
            "receptive_field": self.receptive_field,
            "receptive_field_ms": self._ms(self.receptive_field),
            "frame_context": self.frame_context,
            "frame_context_ms": self._ms(self.frame_context),
            f"{span}_measured": self.receptive_field_measured,
            "flops_per_sample": dict(self.flops_per_sample),
            "weight_bytes": self.weight_bytes, "activation_bytes": self.activation_bytes,
            "training_memory_bytes": self.training_memory_bytes,
            "batch_size": self.batch_size, "seq_len": self.seq_len,
            "layers": [{"name": name, "type": kind, "parameters": count}
                       for name, kind, count in self.layers],
            "notes": list(self.notes),
        }

    def to_json(self, indent=2):
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self):
        measured = ("" if self.receptive_field_measured is None
                    else f"; by gradients {self.receptive_field_measured}")
        if self.frame_context is not None:
            span = ("frame context", f"{self.frame_context} samples "
                                     f"({self._ms(self.frame_context):.2f} ms){measured}; "
                                     f"receptive field unbounded (recurrent)")
        else:
            span = ("receptive field", f"{self.receptive_field} samples "
                                       f"({self._ms(self.receptive_field):.2f} ms){measured}")
        flops = ", ".join(f"{name} {_si(value)}" for name, value in
                          self.flops_per_sample.items())
        rows = [
            ("model", f"{self.family}" + (f" (preset {self.preset})" if self.preset else "")
             + f", {self.sample_rate} Hz"),
            ("parameters", f"{self.parameters:,} ({self.trainable_parameters:,} trainable)"),
            ("depth", f"{self.depth} ({self.depth_rule})"),
            ("gamma", f"{self.gamma:,.0f} parameters per layer"),
            span,
            ("FLOPs per sample", flops),
            ("weights", _bytes(self.weight_bytes)),
            ("activations", f"{_bytes(self.activation_bytes)} at batch {self.batch_size} x "
                            f"{self.seq_len} samples"),
            ("training memory", f"{_bytes(self.training_memory_bytes)} (activations + 4 x "
                                f"weights)"),
        ] + [("note", note) for note in self.notes]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        name_width = max(len(name) for name, _, _ in self.layers)
        lines.append("")
        lines.append(f"{'layer':<{name_width}}  {'type':<28} {'parameters':>12}  share")
        for name, kind, count in self.layers:
            share = 100.0 * count / self.parameters if self.parameters else 0.0
            lines.append(f"{name:<{name_width}}  {kind:<28} {count:>12,}  {share:5.1f} %")
        return "\n".join(lines)


def _si(value):
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.2f} {suffix}"
    return f"{value:.0f}"


def _bytes(count):
    for factor, suffix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if count >= factor:
            return f"{count / factor:.1f} {suffix}"
    return f"{count} B"


def layer_table(model):
    """``[(name, type, parameters)]`` for each direct sublayer, plus ``("(model)", type,
    n)`` for weights the model holds itself; the counts sum to ``model.count_params()``."""
    rows, owned = [], set()
    for layer in model.layers:
        rows.append((layer.name, type(layer).__name__, int(layer.count_params())))
        owned.update(id(weight) for weight in layer.weights)
    own = [weight for weight in model.weights if id(weight) not in owned]
    if own:
        rows.append(("(model)", type(model).__name__,
                     int(sum(math.prod(weight.shape) for weight in own))))
    return rows


def analyze_model(model_or_preset, overrides=None, batch_size=None, seq_len=None,
                  measure=True):
    """Measure a model (see the module docstring for every definition).

    Args:
      model_or_preset: a samplenet model, or a preset / family name for
        ``schema.config_for``.
      overrides: with a name, ``{"key": value}`` or ``["key=value", ...]`` as for ``--set``.
      batch_size: batch of the activation estimate (default: the preset's
        ``train.batch_size``; 1 for a model instance).
      seq_len: samples per training sequence of the estimate (default: the model's own: the
        SampleRNN subsequence, the WaveNet / linear AR window, the codec segment).
      measure: confirm the receptive field (frame context) by gradients.
    Returns:
      a ``ModelReport``.
    """
    batch_size = None if batch_size is None else check_positive_int("batch_size", batch_size)
    seq_len = None if seq_len is None else check_positive_int("seq_len", seq_len)
    preset = None
    if isinstance(model_or_preset, AudioModel):
        if overrides:
            raise ValueError("overrides apply to a preset name, not to a built model")
        model = model_or_preset
        default_batch = 1
    elif isinstance(model_or_preset, str):
        config = schema.config_for(model_or_preset, overrides)
        model = schema.model_from_config(config)
        preset = model_or_preset
        default_batch = config["train"]["batch_size"]
    else:
        raise ValueError(f"model_or_preset must be a samplenet model or a preset name, got "
                         f"{model_or_preset!r}")
    if model.family not in FAMILY_FIGURES:
        raise ValueError(f"analyze_model knows the families {sorted(FAMILY_FIGURES)}, got "
                         f"{model.family!r}")
    model.ensure_built()
    figures = FAMILY_FIGURES[model.family](model)
    batch_size = batch_size or default_batch
    seq_len = seq_len or figures.default_seq_len
    weight_bytes = int(sum(math.prod(weight.shape) * np.dtype(weight.dtype).itemsize
                           for weight in model.weights))
    return ModelReport(
        family=model.family, preset=preset, sample_rate=int(model.sample_rate),
        parameters=int(model.count_params()),
        trainable_parameters=int(sum(math.prod(w.shape) for w in model.trainable_weights)),
        layers=layer_table(model), depth=figures.depth, depth_rule=figures.depth_rule,
        receptive_field=figures.receptive_field,
        receptive_field_measured=figures.measure() if measure else None,
        frame_context=figures.frame_context, flops_per_sample=figures.flops_per_sample,
        weight_bytes=weight_bytes,
        activation_bytes=int(FLOAT_BYTES * batch_size * seq_len * figures.activation_floats),
        batch_size=batch_size, seq_len=seq_len, notes=list(figures.notes))
