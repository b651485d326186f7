"""Measure a model: parameters per layer, depth, receptive field, FLOPs per sample, memory.

Definitions (each family's ``figures()`` computes them from the built model's configuration,
as a ``samplenet.models.figures.FamilyFigures``):

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
  objective scaled by ``samplenet.models.figures.GRADIENT_SCALE`` so that far gradients of
  deep stacks do not underflow). SampleRNN is recurrent (unbounded receptive field,
  reported as None); its ``frame_context`` is the top frame size, the samples the top tier
  reads at once, and the measured span is that of the first output
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
from typing import Optional

import numpy as np

from samplenet import config as schema
from samplenet.models.base import AudioModel
from samplenet.validation import check_positive_int

FLOAT_BYTES = 4
OPTIMIZER_COPIES = 4  # weights, gradients, Adam's two moments


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
    model.ensure_built()
    figures = model.figures()
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
