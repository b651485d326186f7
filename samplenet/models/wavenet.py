"""WaveNet (van den Oord et al., 2016): dilated causal convolutions with gated residual blocks,
global (class) and local (frame-rate feature) conditioning, and fast cached generation.

Timeline conventions:

- ``call`` maps input codes ``samples[:, t]`` to ``logits[:, t]``, the distribution of sample
  ``t + 1``; ``logits[:, t]`` depends on ``samples[:, t - receptive_field + 1 : t + 1]`` (zeros
  before the start). Local-conditioning features are upsampled to one vector per input
  sample: frame ``i`` conditions input positions ``[i*hop, (i+1)*hop)``.
- Generation runs the same network one sample at a time over the sequence
  ``history + generated``, where ``history`` is the prime, left-padded with silence up to the
  receptive field (so the first prediction sees a full receptive field, as in training).
  One parallel pass over the end of the history fills every layer's cache; then a compiled
  loop steps sample by sample. Generated sample ``n`` (counted from 0 after the prime) is
  drawn with the seed ``step_seed(seed, n)``, whatever the prime and the chunking; the
  silence padding gets zero local conditioning.
"""
import keras
import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.layers.causal_conv1d import CausalConv1D
from samplenet.layers.conditioning_upsampler import ConditioningUpsampler
from samplenet.layers.gated_residual_block import GatedResidualBlock
from samplenet.models import sampler
from samplenet.models.figures import (BACKWARD_FACTOR, FamilyFigures, SuggestedStructure,
                                      measured_span, milliseconds, upsampler_macs)
from samplenet.models.base import CategoricalAutoregressive
from samplenet.models.registry import register_family
from samplenet.ops.sampling import (check_condition, check_prime, check_temperature, make_seed,
                                    sample_logits, step_seed)
from samplenet.ops.losses import masked_accuracy, masked_cross_entropy
from samplenet.validation import check_bool, check_int, check_positive_int


def stacked_dilations(num_stacks, num_layers):
    """``[1, 2, 4, ..., 2**(num_layers-1)]`` repeated ``num_stacks`` times."""
    return [2 ** i for i in range(num_layers)] * num_stacks



# Suggested structures (``suggest_structure``).
MAX_SUGGESTED_LAYERS = 10
MIN_SUGGESTED_STACKS = 2
MAX_SUGGESTED_STACKS = 8

@keras.saving.register_keras_serializable(package="samplenet")
@register_family("wavenet")
class WaveNet(CategoricalAutoregressive):
    """WaveNet over quantized samples.

    Args:
      dilations: list of the dilation of every gated block, or None for ``num_stacks`` x
        ``[1, 2, ..., 2**(num_layers-1)]``.
      num_stacks, num_layers: used when ``dilations`` is None.
      filter_width: taps of every dilated convolution.
      input_width: taps of the causal input convolution.
      residual_channels, dilation_channels, skip_channels: widths (see GatedResidualBlock).
      q_levels, quantization: the sample quantization (``samplenet.quantization``).
      num_classes: global conditioning on a class id when > 0 (embedded, projected into every
        block).
      local_condition_channels: log-mel bands of local conditioning when > 0 (upsampled by
        ``ConditioningUpsampler``, projected into every block).
      local_condition_hop: samples per conditioning frame.
      embed_inputs: embed the input codes (``residual_channels`` wide) instead of one-hot.
      sample_rate: Hz.
      target_len: target samples per training window.
    """

    data_kind = "windows"

    def __init__(self, dilations=None, num_stacks=5, num_layers=10, filter_width=2,
                 input_width=2, residual_channels=32, dilation_channels=32, skip_channels=512,
                 q_levels=256, quantization="mu-law", num_classes=0,
                 local_condition_channels=0, local_condition_hop=256, embed_inputs=False,
                 sample_rate=16000, target_len=4000, **kwargs):
        super().__init__(**kwargs)
        quant.check_quantization(q_levels, quantization)
        if dilations is None:
            check_positive_int("num_stacks", num_stacks)
            check_positive_int("num_layers", num_layers)
            resolved = stacked_dilations(num_stacks, num_layers)
        else:
            if isinstance(dilations, (str, bytes)) or not hasattr(dilations, "__len__") \
                    or len(dilations) == 0:
                raise ValueError(f"dilations must be a non-empty list of positive integers, "
                                 f"got {dilations!r}")
            for d in dilations:
                check_positive_int("dilations", d)
            resolved = [int(d) for d in dilations]
        for name, value in (("filter_width", filter_width), ("input_width", input_width),
                            ("residual_channels", residual_channels),
                            ("dilation_channels", dilation_channels),
                            ("skip_channels", skip_channels), ("sample_rate", sample_rate),
                            ("target_len", target_len),
                            ("local_condition_hop", local_condition_hop)):
            check_positive_int(name, value)
        check_int("num_classes", num_classes, 0)
        check_int("local_condition_channels", local_condition_channels, 0)
        check_bool("embed_inputs", embed_inputs)

        self.dilations = None if dilations is None else list(resolved)
        self.num_stacks = num_stacks
        self.num_layers = num_layers
        self.filter_width = filter_width
        self.input_width = input_width
        self.residual_channels = residual_channels
        self.dilation_channels = dilation_channels
        self.skip_channels = skip_channels
        self.q_levels = q_levels
        self.quantization = quantization
        self.num_classes = num_classes
        self.local_condition_channels = local_condition_channels
        self.local_condition_hop = local_condition_hop
        self.embed_inputs = embed_inputs
        self.sample_rate = sample_rate
        self.target_len = target_len
        self.layer_dilations = tuple(resolved)

        self.input_embedding = (keras.layers.Embedding(q_levels, residual_channels,
                                                       name="input_embedding")
                                if embed_inputs else None)
        self.input_conv = CausalConv1D(residual_channels, input_width, name="input_conv")
        self.label_embedding = (keras.layers.Embedding(num_classes, residual_channels,
                                                       name="label_embedding")
                                if num_classes else None)
        self.upsampler = (ConditioningUpsampler(local_condition_channels, local_condition_hop,
                                                name="upsampler")
                          if local_condition_channels else None)
        self.blocks = [
            GatedResidualBlock(residual_channels, dilation_channels, skip_channels,
                               filter_width=filter_width, dilation_rate=dilation,
                               global_condition_channels=residual_channels if num_classes else 0,
                               local_condition_channels=local_condition_channels,
                               use_residual=i < len(resolved) - 1, name=f"block_{i}")
            for i, dilation in enumerate(resolved)]
        self.head_hidden = keras.layers.Dense(skip_channels, name="head_hidden")
        self.head_logits = keras.layers.Dense(q_levels, name="head_logits")

    # ----------------------------------------------------------------------------- structure
    @property
    def receptive_field(self):
        """Input samples one prediction depends on:
        ``(filter_width - 1) * sum(dilations) + input_width``."""
        return (self.filter_width - 1) * sum(self.layer_dilations) + self.input_width

    @property
    def _encoded_channels(self):
        return self.residual_channels if self.embed_inputs else self.q_levels

    def build(self, input_shape=None):
        """Create every weight from the configuration (the input shape is not needed).
        Idempotent: a training step that ran the sublayers directly may have built some."""
        shapes = [(self.input_embedding, (None, None)),
                  (self.input_conv, (None, None, self._encoded_channels)),
                  (self.label_embedding, (None,)),
                  (self.upsampler, (None, None, self.local_condition_channels)),
                  *[(block, (None, None, self.residual_channels)) for block in self.blocks],
                  (self.head_hidden, (None, None, self.skip_channels)),
                  (self.head_logits, (None, None, self.skip_channels))]
        for layer, shape in shapes:
            if layer is not None and not layer.built:
                layer.build(shape)
        self.built = True

    def get_build_config(self):
        return {"input_shape": None}

    def build_from_config(self, config):
        self.build()

    def data_options(self):
        """Windows of ``receptive_field`` context samples (so that the first target is
        predicted from a full receptive field of real samples) plus ``target_len`` targets,
        rounded up to a whole number of conditioning frames when locally conditioned."""
        context, target_len = self.receptive_field, self.target_len
        local_condition = None
        if self.local_condition_channels:
            hop = self.local_condition_hop
            target_len = -(-(context + target_len) // hop) * hop - context
            local_condition = {"kind": "log-mel", "hop": hop,
                               "num_mels": self.local_condition_channels,
                               "frame_length": 4 * hop}
        return {"context": context, "target_len": target_len, "q_levels": self.q_levels,
                "quantization": self.quantization, "with_labels": self.num_classes > 0,
                "local_condition": local_condition}

    def example_batch(self, batch_size=1):
        """A small batch shaped like ``windows_dataset``'s elements (silence)."""
        total = 2 * self.local_condition_hop if self.local_condition_channels else 16
        batch = {"samples": np.full((batch_size, total),
                                    quant.silence_code(self.q_levels, self.quantization),
                                    np.int32),
                 "audio": np.zeros((batch_size, total), np.float32),
                 "mask": np.ones((batch_size, total // 2), np.float32)}
        if self.num_classes:
            batch["label"] = np.zeros((batch_size,), np.int32)
        if self.local_condition_channels:
            batch["features"] = np.zeros(
                (batch_size, total // self.local_condition_hop, self.local_condition_channels),
                np.float32)
        return batch

    # ------------------------------------------------------------------------ parallel pass
    def _encode(self, codes):
        """int32 codes ``(...)`` -> ``(..., encoded channels)``: one-hot or embedding."""
        if self.input_embedding is not None:
            return self.input_embedding(codes)
        return tf.one_hot(codes, self.q_levels, dtype=self.compute_dtype)

    def _label_vector(self, label):
        """Class ids ``(batch,)`` -> ``(batch, residual_channels)``, or None if unconditioned."""
        if not self.num_classes:
            return None
        if label is None:
            raise ValueError(f"this WaveNet is class-conditioned (num_classes="
                             f"{self.num_classes}): inputs need a 'label'")
        return self.label_embedding(label)

    def _upsampled(self, features, length):
        """Frame features ``(batch, frames, channels)`` -> ``(batch, length, channels)`` (cut,
        or zero-padded at the end), or None if not locally conditioned."""
        if not self.local_condition_channels:
            return None
        if features is None:
            raise ValueError(f"this WaveNet is locally conditioned (local_condition_channels="
                             f"{self.local_condition_channels}): inputs need 'features'")
        upsampled = self.upsampler(features)[:, :length]
        missing = length - tf.shape(upsampled)[1]
        return tf.pad(upsampled, [[0, 0], [0, missing], [0, 0]])

    def _head(self, skips):
        return self.head_logits(tf.nn.relu(self.head_hidden(tf.nn.relu(skips))))

    def logits_from_encoded(self, encoded, label_vector=None, local=None, output_from=0,
                            layer_inputs=None):
        """The network after the input encoding (differentiable in ``encoded``, which is how
        tests measure the receptive field by gradients).

        Args:
          encoded: float ``(batch, time, q_levels)`` one-hot codes, or ``(batch, time,
            residual_channels)`` embeddings when ``embed_inputs``.
          label_vector: embedded class ``(batch, residual_channels)`` or None.
          local: upsampled conditioning ``(batch, time, local_condition_channels)`` or None.
          output_from: first time position whose logits are computed.
          layer_inputs: if a list, the input of every cached layer (input conv, then each
            block) is appended to it.
        Returns:
          logits ``(batch, time - output_from, q_levels)``.
        """
        if layer_inputs is not None:
            layer_inputs.append(encoded)
        hidden = self.input_conv(encoded)
        skips = None
        for block in self.blocks:
            if layer_inputs is not None:
                layer_inputs.append(hidden)
            hidden, skip = block(hidden, global_condition=label_vector, local_condition=local)
            skip = skip[:, output_from:]
            skips = skip if skips is None else skips + skip
        return self._head(skips)

    def _network(self, codes, label_vector, local, output_from=0, layer_inputs=None):
        """``logits_from_encoded`` of int32 codes ``(batch, time)``."""
        return self.logits_from_encoded(self._encode(codes), label_vector, local, output_from,
                                        layer_inputs)

    def call(self, inputs, training=None):
        """``inputs``: ``samples`` int32 ``(batch, time)``, ``label`` int32 ``(batch,)`` when
        ``num_classes`` > 0, ``features`` float32 ``(batch, time // hop, channels)`` when
        locally conditioned. Returns logits ``(batch, time, q_levels)``; ``logits[:, t]``
        predicts ``samples[:, t + 1]``."""
        samples = inputs["samples"]
        local = self._upsampled(inputs.get("features"), tf.shape(samples)[1])
        return self._network(samples, self._label_vector(inputs.get("label")), local)

    # ----------------------------------------------------------------------------- training
    def loss_and_accuracy(self, data, training):
        """Cross-entropy of the last ``target_len`` samples (``mask``'s length) of each window;
        only the head of those positions is computed."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        samples, mask = data["samples"], data["mask"]
        total, target_len = tf.shape(samples)[1], tf.shape(mask)[1]
        local = self._upsampled(data.get("features"), total)
        logits = self._network(samples[:, :-1], self._label_vector(data.get("label")),
                               None if local is None else local[:, :-1],
                               output_from=total - target_len - 1)
        targets = samples[:, total - target_len:]
        loss, weight = masked_cross_entropy(targets, logits, mask)
        accuracy, _ = masked_accuracy(targets, logits, mask)
        return loss, weight, accuracy

    def get_config(self):
        config = super().get_config()
        config.update(dilations=None if self.dilations is None else list(self.dilations),
                      num_stacks=self.num_stacks, num_layers=self.num_layers,
                      filter_width=self.filter_width, input_width=self.input_width,
                      residual_channels=self.residual_channels,
                      dilation_channels=self.dilation_channels,
                      skip_channels=self.skip_channels, q_levels=self.q_levels,
                      quantization=self.quantization, num_classes=self.num_classes,
                      local_condition_channels=self.local_condition_channels,
                      local_condition_hop=self.local_condition_hop,
                      embed_inputs=self.embed_inputs, sample_rate=self.sample_rate,
                      target_len=self.target_len)
        return config

    def figures(self):
        """``FamilyFigures`` of this WaveNet (see ``samplenet.models.figures``)."""
        R, D, S, Q = (self.residual_channels, self.dilation_channels, self.skip_channels,
                      self.q_levels)
        encoded = R if self.embed_inputs else Q
        local = self.local_condition_channels
        num_blocks = len(self.layer_dilations)
        input_macs = self.input_width * encoded * R
        block_macs = sum(self.filter_width * R * 2 * D + D * (S + (R if i < num_blocks - 1 else 0))
                         + local * 2 * D for i in range(num_blocks))
        global_macs = num_blocks * R * 2 * D if self.num_classes else 0
        local_macs = upsampler_macs(self.upsampler) if local else 0.0
        head_macs = S * S + S * Q
        options = self.data_options()
        context, target_len = options["context"], options["target_len"]
        per_position = input_macs + block_macs + local_macs
        forward = per_position * (context + target_len - 1) / target_len + head_macs
        label = tf.zeros((1, R)) if self.num_classes else None
        length = self.receptive_field + 16

        def logits(x):
            # Inputs like the real ones (a softmax is a soft one-hot; embeddings are small), so
            # that deep stacks do not saturate their gates and zero a far gradient by accident.
            x = 0.05 * x if self.embed_inputs else tf.nn.softmax(x, axis=-1)
            conditioning = tf.zeros((1, length, local)) if local else None
            return self.logits_from_encoded(x, label, conditioning, output_from=length - 1)

        def measure():
            return measured_span(logits, length, position=0, channels=encoded)

        return FamilyFigures(
            depth=1 + num_blocks + 2,
            depth_rule=f"input conv + {num_blocks} gated blocks + 2 output layers",
            receptive_field=self.receptive_field, frame_context=None,
            flops_per_sample={"generation": 2.0 * (per_position + global_macs + head_macs),
                              "training": 2.0 * BACKWARD_FACTOR * forward},
            activation_floats=encoded + R + num_blocks * (5 * D + 2 * S + 2 * R) + 3 * S + 2 * Q
            + local,
            default_seq_len=context + target_len, measure=measure,
            notes=(f"a training window recomputes {context} context samples for {target_len} "
                   f"targets",))

    # ------------------------------------------------------------------ suggestion
    default_preset = "wavenet"
    training_length_key = "target_len"
    suggests_quantization = True

    @classmethod
    def suggest_structure(cls, base, span, report):
        """``num_stacks`` x ``[1, 2, .., 2**(num_layers-1)]`` with the fewest layers per stack
        (at most MAX_SUGGESTED_LAYERS) such that MIN_SUGGESTED_STACKS stacks cover ``span``,
        and as many stacks as needed (at most MAX_SUGGESTED_STACKS)."""
        width, input_width, rate = base["filter_width"], base["input_width"], base["sample_rate"]
        if width < 2:
            raise ValueError(f"filter_width must be >= 2 for dilations to grow the receptive "
                             f"field, got {width}")
        need = max(span - input_width, 1)

        def per_stack(layers):
            return (width - 1) * (2 ** layers - 1)

        layers = next((n for n in range(1, MAX_SUGGESTED_LAYERS + 1)
                       if MIN_SUGGESTED_STACKS * per_stack(n) >= need), MAX_SUGGESTED_LAYERS)
        stacks = min(MAX_SUGGESTED_STACKS,
                     max(MIN_SUGGESTED_STACKS, -(-need // per_stack(layers))))
        receptive = stacks * per_stack(layers) + input_width
        reason = (f"num_stacks {stacks} x num_layers {layers} (dilations "
                  f"1..{2 ** (layers - 1)}, filter width {width}): a receptive field of "
                  f"{receptive} samples ({milliseconds(receptive, rate)})")
        return SuggestedStructure({"dilations": None, "num_stacks": stacks,
                                   "num_layers": layers}, receptive, [reason])

    # --------------------------------------------------------------------- fast generation
    def _initial_caches(self, batch_size):
        """Zero caches: per layer, the ring buffer of its last ``dilation*(width-1)`` inputs."""
        return ([self.input_conv.initial_cache(batch_size, self._encoded_channels)]
                + [block.initial_cache(batch_size) for block in self.blocks])

    def _caches_from_history(self, history, label, features, pad):
        """Caches for stepping from the last history sample on, by one parallel pass over the
        ``receptive_field - 1`` samples before it (enough for every layer's cache)."""
        start, end = history.shape[1] - self.receptive_field, history.shape[1] - 1
        layer_inputs = []
        label_vector = self._label_vector(None if label is None
                                          else tf.convert_to_tensor(label, tf.int32))
        self._network(tf.convert_to_tensor(history[:, start:end], tf.int32), label_vector,
                      self._sequence_local(features, start, end - start, pad),
                      output_from=end - start, layer_inputs=layer_inputs)
        layers = [self.input_conv] + self.blocks
        return [layer.cache_from_history(inputs, tf.constant(end))
                for layer, inputs in zip(layers, layer_inputs)]

    def _step(self, caches, codes, position, label_vector, local):
        """One sample: input codes ``(batch,)`` at ``position`` -> ``(logits (batch, q_levels),
        new caches)``; ``local`` is the conditioning ``(batch, channels)`` at that position."""
        hidden, first = self.input_conv.step(self._encode(codes), caches[0], position)
        new_caches, skips = [first], None
        for block, cache in zip(self.blocks, caches[1:]):
            hidden, skip, cache = block.step(hidden, cache, position,
                                             global_condition=label_vector,
                                             local_condition=local)
            new_caches.append(cache)
            skips = skip if skips is None else skips + skip
        return self._head(skips), new_caches

    # -------------------------------------------- one step of the shared sampler's loop
    # State: ``(caches, current, position)``: the layers' caches, the latest input code
    # ``(batch,)`` and its position in the sequence (silence and prime included).
    @property
    def needs_step_inputs(self):
        """A locally conditioned WaveNet needs features for every generated sample."""
        return bool(self.local_condition_channels)

    def start_generation(self, batch_size, prime, labels, num_samples, local_condition=None):
        """Caches after the prime (preceded by silence up to the receptive field); context:
        the class ids; chunk inputs: the upsampled ``local_condition`` of each chunk's
        positions."""
        prime_len = 0 if prime is None else prime.shape[1]
        features = self._check_local_condition(local_condition, batch_size,
                                               prime_len + num_samples)
        features = None if features is None else tf.constant(features)
        history, pad = self._history(prime, batch_size)
        caches = self._caches_from_history(history, labels, features, pad)
        position = history.shape[1] - 1

        def chunk_inputs(first, count):
            return self._sequence_local(features, position + first, count, pad)

        labels = None if labels is None else tf.convert_to_tensor(labels, tf.int32)
        return sampler.Start((caches, tf.convert_to_tensor(history[:, -1], tf.int32),
                              tf.constant(position)), labels,
                             None if features is None else chunk_inputs)

    def loop_context(self, labels):
        """The class vectors ``(batch, residual_channels)`` or None."""
        return self._label_vector(labels)

    def predict_next(self, state, label_vector, chunk_inputs, step, index):
        caches, current, position = state
        local = None if chunk_inputs is None else chunk_inputs[:, step]
        logits, caches = self._step(caches, current, position, label_vector, local)
        return logits, (caches, current, position + 1)

    def append(self, state, value):
        caches, _, position = state
        return caches, value, position

    def teacher_forced_logits(self, samples, label=None, features=None):
        """Logits of the fast generation loop fed ``samples`` int32 ``(batch, time)`` from zero
        caches: equal (to float tolerance) to ``call`` on the same inputs. NumPy float32
        ``(batch, time, q_levels)``."""
        self.ensure_built()
        samples = tf.convert_to_tensor(samples, tf.int32)
        label = None if label is None else tf.convert_to_tensor(label, tf.int32)
        features = None if features is None else tf.convert_to_tensor(features, tf.float32)
        local = self._upsampled(features, samples.shape[1])
        chunk_inputs = None if local is None else (lambda first, count:
                                                   local[:, first:first + count])
        start = sampler.Start((self._initial_caches(samples.shape[0]), samples[:, 0],
                               tf.constant(0)), label, chunk_inputs)
        # Step k reads input k and predicts k + 1: feed inputs 1.. (the last one is unused).
        fed = tf.concat([samples[:, 1:], samples[:, -1:]], axis=1)
        return sampler.teacher_forced(self, start, fed).numpy()

    def _history(self, prime, batch_size):
        """Codes ``(batch, max(receptive_field, prime_len))``: the prime left-padded with
        silence; and the number of padding samples. Without a prime, a tensor of silence
        (``batch_size`` may be a tensor)."""
        silence = quant.silence_code(self.q_levels, self.quantization)
        if prime is None:
            return tf.fill([batch_size, self.receptive_field], silence), self.receptive_field
        prime_codes = quant.encode(prime, self.q_levels, self.quantization)
        pad = max(0, self.receptive_field - prime_codes.shape[1])
        history = np.concatenate([np.full((batch_size, pad), silence, np.int32),
                                  prime_codes.astype(np.int32)], axis=1)
        return history, pad

    def _check_local_condition(self, local_condition, batch_size, needed_samples):
        if not self.local_condition_channels:
            if local_condition is not None:
                raise ValueError("local_condition: this WaveNet is not locally conditioned "
                                 "(local_condition_channels=0)")
            return None
        if local_condition is None:
            raise ValueError(f"local_condition: this WaveNet is locally conditioned; pass "
                             f"features (batch, frames, {self.local_condition_channels}) "
                             f"covering the prime and the generated samples")
        features = np.asarray(local_condition, np.float32)
        if features.ndim == 2:
            features = features[None]
        frames_needed = -(-needed_samples // self.local_condition_hop)
        if (features.ndim != 3 or features.shape[0] not in (1, batch_size)
                or features.shape[2] != self.local_condition_channels
                or features.shape[1] < frames_needed):
            raise ValueError(f"local_condition must have shape (batch_size={batch_size} or 1, "
                             f">= {frames_needed} frames, {self.local_condition_channels}) to "
                             f"cover {needed_samples} samples at hop "
                             f"{self.local_condition_hop}, got {features.shape}")
        return np.broadcast_to(features, (batch_size,) + features.shape[1:])

    def _sequence_local(self, features, start, length, pad):
        """Upsampled conditioning ``(batch, length, channels)`` of sequence positions
        ``[start, start + length)``: zeros on the ``pad`` silence positions, then the user's
        features (which start with the prime). Only the frames needed are upsampled."""
        if features is None:
            return None
        zeros = min(max(pad - start, 0), length)
        first = max(start - pad, 0)
        last = start + length - pad
        parts = [tf.zeros((features.shape[0], zeros, self.local_condition_channels))]
        if last > first:
            hop = self.local_condition_hop
            frame0, frame1 = first // hop, -(-last // hop)
            upsampled = self.upsampler(features[:, frame0:frame1])
            parts.append(upsampled[:, first - frame0 * hop:last - frame0 * hop])
        return tf.concat(parts, axis=1)

    def naive_generate(self, num_samples, batch_size=1, temperature=1.0, seed=None, prime=None,
                       condition=None, local_condition=None):
        """Reference generator for tests: recomputes the whole sequence with the parallel pass
        for every sample (a Python loop; slow). Same conventions and seeds as
        ``generate_chunks``. Returns ``(codes (batch, num_samples), logits (batch,
        num_samples, q_levels))`` as NumPy."""
        check_positive_int("num_samples", num_samples)
        temperature = check_temperature(temperature, batch_size)
        label = check_condition(condition, batch_size, self.num_classes)
        prime = check_prime(prime, batch_size)
        prime_len = 0 if prime is None else prime.shape[1]
        features = self._check_local_condition(local_condition, batch_size,
                                               prime_len + num_samples)
        history, pad = self._history(prime, batch_size)
        self.ensure_built()
        seed = make_seed(seed)
        label_vector = self._label_vector(None if label is None else tf.constant(label))
        features = None if features is None else tf.constant(features)
        sequence, codes, all_logits = np.asarray(history), [], []
        for index in range(num_samples):
            length = sequence.shape[1]
            logits = self._network(tf.constant(sequence), label_vector,
                                   self._sequence_local(features, 0, length, pad),
                                   output_from=length - 1)[:, 0]
            code = sample_logits(logits, temperature, step_seed(seed, index)).numpy()
            sequence = np.concatenate([sequence, code[:, None]], axis=1)
            codes.append(code)
            all_logits.append(logits.numpy())
        return np.stack(codes, axis=1), np.stack(all_logits, axis=1)
