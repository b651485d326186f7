"""SampleRNN (Mehri et al., ICLR 2017) with any number of frame-level tiers."""
import keras
import numpy as np
import tensorflow as tf

from samplenet.quantization import check_quantization, encode, silence_code
from samplenet.layers.frame_rnn import FrameRNN
from samplenet.layers.linear import frozen_kernels
from samplenet.layers.sample_mlp import SampleMLP
from samplenet.models import sampler
from samplenet.models.figures import (BACKWARD_FACTOR, FamilyFigures, SuggestedStructure,
                                      measured_span, milliseconds)
from samplenet.models.base import CategoricalAutoregressive
from samplenet.models.registry import register_family
from samplenet.ops import recurrent
from samplenet.ops.losses import masked_accuracy, masked_cross_entropy
from samplenet.validation import check_int, check_positive_int


# Suggested structures (``suggest_structure``).
SUGGESTED_FRAME_RATIO = 4
MAX_SUGGESTED_TOP_FRAME = 1024

class _CarriedState:
    """RNN state carried between consecutive batches, one row per TBPTT lane.

    A plain object (not tracked by Keras or tf.train.Checkpoint: carried state is data
    position, not weights). Variables have a dynamic batch dimension and per-replica copies
    under ``tf.distribute`` (ON_READ synchronisation, as Keras metrics).
    """

    def __init__(self, num_tensors, dim):
        self.variables = [
            tf.Variable(tf.zeros([0, dim]), shape=tf.TensorShape([None, dim]), trainable=False,
                        synchronization=tf.VariableSynchronization.ON_READ,
                        aggregation=tf.VariableAggregation.NONE, name=f"carried_{i}")
            for i in range(num_tensors)]

    def merge(self, initial, reset):
        """Per row: ``initial`` where ``reset`` (or nothing is carried yet), else the carried
        state. ``initial`` is a flat list of ``(batch, dim)`` tensors."""
        merged = []
        for start, variable in zip(initial, self.variables):
            # Nothing carried yet (0 rows): fall back to ``initial`` without a shape-changing
            # branch, so the step also compiles with XLA. The padded copy is outside the
            # gradient (slicing it would differentiate through the variable's changing shape);
            # ``initial`` gets its gradient through ``tf.where`` alone.
            carried = tf.cast(tf.convert_to_tensor(variable), start.dtype)  # float32 kept
            rows = tf.shape(start)[0]
            padded = tf.stop_gradient(tf.concat([carried, start], axis=0)[:rows])
            fresh = reset | (tf.range(rows) >= tf.shape(carried)[0])
            merged.append(tf.where(fresh[:, None], start, padded))
        return merged

    def store(self, flat_states):
        for variable, state in zip(self.variables, flat_states):
            variable.assign(tf.cast(tf.stop_gradient(state), variable.dtype))

    def clear(self, batch_size=0):
        """Forget the carried state; ``batch_size`` > 0 allocates it at that batch size (a fixed
        shape lets XLA compile the training step)."""
        for variable in self.variables:
            # No read back: under tf.distribute (cross-replica context) an ON_READ variable
            # without aggregation cannot be read, only assigned on every replica.
            variable.assign(tf.zeros([batch_size, variable.shape[-1]]), read_value=False)


@keras.saving.register_keras_serializable(package="samplenet")
@register_family("samplernn")
class SampleRNN(CategoricalAutoregressive):
    """SampleRNN: frame-level RNN tiers over non-overlapping frames plus a sample-level MLP.

    ``frame_sizes`` lists the frame size of each frame-level tier from the lowest up, in
    samples, each a multiple of the one below: ``[16]`` is 2-tier, ``[16, 64]`` is 3-tier.
    Tier ``k`` reads the previous ``frame_sizes[k]`` samples (levels scaled to [-2, 2]) once
    per frame, adds the conditioning from the tier above, and its learned upsampling gives one
    vector per frame of tier ``k - 1`` (per sample for the lowest tier). The sample-level MLP
    reads the embedded last ``frame_sizes[0]`` samples and predicts the next sample's level.

    Inputs (a dict, as the TBPTT pipeline yields): ``samples`` int32
    ``(batch, overlap + seq_len)`` where ``overlap = frame_sizes[-1]`` samples of context
    precede the ``seq_len`` targets, ``mask`` float32 ``(batch, seq_len)``, ``reset`` bool
    ``(batch,)``, and with ``num_classes > 0`` a ``label`` int32 ``(batch,)`` (global
    conditioning: an embedding added at the top tier). ``call`` returns logits
    ``(batch, seq_len, q_levels)`` from the initial state; ``train_step``/``test_step`` carry
    the RNN state across consecutive batches per row and reset it where ``reset`` is set
    (truncated BPTT). The receptive field is unbounded (recurrent): ``receptive_field`` is
    None.

    Args:
      frame_sizes: frame size per frame tier, lowest first.
      dim: width of every RNN, projection and MLP layer.
      rnn_type: ``"gru"`` or ``"lstm"``.
      num_rnn_layers: RNN layers per tier.
      skip_connections: input to every RNN layer, sum of every layer's output.
      learn_h0: learn the initial RNN state.
      emb_size: embedding size of a level in the sample-level MLP.
      mlp_layers: hidden ReLU layers of the sample-level MLP.
      q_levels: quantization levels (>= 2).
      quantization: ``"linear"``, ``"mu-law"`` or ``"a-law"``.
      weight_norm: weight-normalise the projections (not the RNN kernels).
      num_classes: global-conditioning classes (0 = unconditioned).
      seq_len: truncated-BPTT subsequence length in samples (a multiple of the top frame).
      sample_rate: Hz.
    """

    data_kind = "tbptt"
    receptive_field = None

    def __init__(self, frame_sizes=(16, 64), dim=1024, rnn_type="gru", num_rnn_layers=1,
                 skip_connections=False, learn_h0=True, emb_size=256, mlp_layers=3,
                 q_levels=256, quantization="mu-law", weight_norm=True, num_classes=0,
                 seq_len=1024, sample_rate=16000, **kwargs):
        super().__init__(**kwargs)
        frame_sizes = list(frame_sizes) if isinstance(frame_sizes, (list, tuple)) else frame_sizes
        if not isinstance(frame_sizes, list) or not frame_sizes:
            raise ValueError(f"frame_sizes must be a non-empty list, got {frame_sizes!r}")
        for size in frame_sizes:
            check_positive_int("frame_sizes", size)
        for lower, upper in zip(frame_sizes, frame_sizes[1:]):
            if upper <= lower or upper % lower:
                raise ValueError(f"frame_sizes must each be a multiple (> 1x) of the one below, "
                                 f"got {frame_sizes!r}")
        for name, value in (("dim", dim), ("num_rnn_layers", num_rnn_layers),
                            ("emb_size", emb_size), ("mlp_layers", mlp_layers),
                            ("seq_len", seq_len), ("sample_rate", sample_rate)):
            check_positive_int(name, value)
        if rnn_type not in recurrent.RNN_TYPES:
            raise ValueError(f"rnn_type must be one of {sorted(recurrent.RNN_TYPES)}, "
                             f"got {rnn_type!r}")
        check_quantization(q_levels, quantization)
        check_int("num_classes", num_classes, 0)
        if seq_len % frame_sizes[-1]:
            raise ValueError(f"seq_len ({seq_len}) must be a multiple of the top frame size "
                             f"({frame_sizes[-1]})")
        self.frame_sizes = frame_sizes
        self.dim = dim
        self.rnn_type = rnn_type
        self.num_rnn_layers = num_rnn_layers
        self.skip_connections = skip_connections
        self.learn_h0 = learn_h0
        self.emb_size = emb_size
        self.mlp_layers = mlp_layers
        self.q_levels = q_levels
        self.quantization = quantization
        self.weight_norm = weight_norm
        self.num_classes = num_classes
        self.seq_len = seq_len
        self.sample_rate = sample_rate

        ratios = [frame_sizes[0]] + [up // low for low, up in zip(frame_sizes, frame_sizes[1:])]
        self.tiers = [
            FrameRNN(size, ratio, dim, rnn_type=rnn_type, num_rnn_layers=num_rnn_layers,
                     skip_connections=skip_connections, learn_h0=learn_h0,
                     weight_norm=weight_norm, name=f"frame_tier_{k}")
            for k, (size, ratio) in enumerate(zip(frame_sizes, ratios))]
        self.sample_mlp = SampleMLP(frame_sizes[0], q_levels, emb_size, dim,
                                    mlp_layers=mlp_layers, weight_norm=weight_norm,
                                    name="sample_mlp")
        num_state_tensors = len(frame_sizes) * num_rnn_layers * (2 if rnn_type == "lstm" else 1)
        self._train_state = _CarriedState(num_state_tensors, dim)
        self._eval_state = _CarriedState(num_state_tensors, dim)
        self.build()  # every weight's shape follows from the arguments

    # ----- structure -------------------------------------------------------------------
    @property
    def overlap(self):
        """Context samples preceding each subsequence: the top tier's frame size."""
        return self.frame_sizes[-1]

    @property
    def num_tiers(self):
        """Frame-level tiers plus the sample-level tier (2-tier, 3-tier, ...)."""
        return len(self.frame_sizes) + 1

    def build(self, input_shape=None):
        for tier in self.tiers:
            tier.build()
        self.sample_mlp.build()
        if self.num_classes:
            self.class_embedding = self.add_weight(
                name="class_embedding", shape=(self.num_classes, self.dim),
                initializer=keras.initializers.RandomNormal(stddev=0.1))
        self.built = True

    def data_options(self):
        return {"seq_len": self.seq_len, "overlap": self.overlap, "q_levels": self.q_levels,
                "quantization": self.quantization, "with_labels": self.num_classes > 0}

    def example_batch(self, batch_size=1):
        silence = silence_code(self.q_levels, self.quantization)
        batch = {"samples": np.full((batch_size, self.overlap + self.seq_len), silence, np.int32),
                 "mask": np.ones((batch_size, self.seq_len), np.float32),
                 "reset": np.ones((batch_size,), bool)}
        if self.num_classes:
            batch["label"] = np.zeros((batch_size,), np.int32)
        return batch

    # ----- parallel (teacher-forced) pass ------------------------------------------------
    def _scale(self, codes):
        """Levels (int, or one-hot float with a last axis of ``q_levels``) -> frame-tier
        inputs in [-2, 2]."""
        if not codes.dtype.is_integer:
            return tf.tensordot(tf.cast(codes, self.compute_dtype),
                                self._scale(tf.range(self.q_levels)), axes=1)
        return tf.cast(codes, self.compute_dtype) * (4.0 / (self.q_levels - 1)) - 2.0

    def _class_vector(self, label):
        if not self.num_classes:
            return None
        return tf.cast(tf.gather(self.class_embedding, label), self.compute_dtype)

    def initial_states(self, batch_size):
        """Initial state of every tier (lowest first), each as ``FrameRNN.initial_state``."""
        return [tier.initial_state(batch_size) for tier in self.tiers]

    def forward(self, samples, label=None, states=None, compute_logits=True):
        """The parallel pass over one subsequence.

        Args:
          samples: int32 ``(batch, overlap + length)``; length a multiple of the top frame. Or
            their one-hot encoding, float ``(batch, overlap + length, q_levels)``: the same
            pass as a differentiable function of the inputs (to measure dependencies by
            gradients).
          label: int32 ``(batch,)`` class ids (global conditioning) or None.
          states: per-tier states (lowest first) or None for the initial states.
          compute_logits: False skips the sample-level MLP (priming).
        Returns:
          ``(logits (batch, length, q_levels) or None, final per-tier states)``.
        """
        samples = tf.convert_to_tensor(samples)
        if samples.dtype.is_integer:
            samples = tf.cast(samples, tf.int32)
        batch = tf.shape(samples)[0]
        length = tf.shape(samples)[1] - self.overlap
        if states is None:
            states = self.initial_states(batch)
        conditioning = self._class_vector(label)
        if conditioning is not None:
            conditioning = tf.broadcast_to(
                conditioning[:, None, :], [batch, length // self.overlap, self.dim])
        final_states = [None] * len(self.tiers)
        for k in reversed(range(len(self.tiers))):
            size = self.frame_sizes[k]
            inputs = self._scale(samples[:, self.overlap - size: self.overlap - size + length])
            frames = tf.reshape(inputs, [batch, length // size, size])
            conditioning, final_states[k] = self.tiers[k](frames, conditioning, states[k])
        if not compute_logits:
            return None, final_states
        window = samples[:, self.overlap - self.frame_sizes[0]: self.overlap + length - 1]
        return self.sample_mlp(window, conditioning), final_states

    def call(self, inputs, training=False):
        """Logits ``(batch, seq_len, q_levels)`` for the targets ``samples[:, overlap:]``,
        starting from the initial state."""
        logits, _ = self.forward(inputs["samples"], inputs.get("label"))
        return logits

    # ----- training ----------------------------------------------------------------------
    def _flat(self, states):
        return tf.nest.flatten(states)

    def _unflat(self, flat):
        return tf.nest.pack_sequence_as(self.initial_states(1), flat)

    def _carried_step(self, data, carried):
        """Loss on one batch from the carried state (reset per row where ``reset``):
        ``(loss, weight, accuracy, final_states)``."""
        if isinstance(data, (tuple, list)):
            data = data[0]
        samples = data["samples"]
        batch = tf.shape(samples)[0]
        states = self._unflat(carried.merge(self._flat(self.initial_states(batch)),
                                            tf.cast(data["reset"], tf.bool)))
        logits, final_states = self.forward(samples, data.get("label"), states)
        targets = samples[:, self.overlap:]
        loss, weight = masked_cross_entropy(targets, logits, data.get("mask"))
        accuracy, _ = masked_accuracy(targets, logits, data.get("mask"))
        return loss, weight, accuracy, final_states

    def loss_and_accuracy(self, data, training):
        """Loss from the carried state of training or evaluation (truncated BPTT)."""
        carried = self._train_state if training else self._eval_state
        loss, weight, accuracy, final_states = self._carried_step(data, carried)
        carried.store(self._flat(final_states))
        return loss, weight, accuracy

    def reset_carried_state(self):
        """Forget the state carried between batches (training and evaluation)."""
        self._train_state.clear()
        self._eval_state.clear()

    @staticmethod
    def _static_batch_size(data):
        spec = getattr(data, "element_spec", None)
        if isinstance(spec, (tuple, list)):
            spec = spec[0]
        if isinstance(spec, dict) and "samples" in spec:
            # A distributed dataset's spec (PerReplicaSpec) has no shape: the carried state
            # then starts empty and takes each replica's batch size at its first step.
            return getattr(spec["samples"], "shape", [None])[0]
        return None

    def fit(self, x=None, *args, **kwargs):
        """``keras.Model.fit``; a new stream starts from a clean carried state (each lane's
        first subsequence has ``reset`` set by the pipeline)."""
        self._train_state.clear(self._static_batch_size(x) or 0)
        validation = kwargs.get("validation_data")
        self._eval_state.clear(self._static_batch_size(validation) or 0)
        return super().fit(x, *args, **kwargs)

    def evaluate(self, x=None, *args, **kwargs):
        """``keras.Model.evaluate`` over a fresh stream, with state carried through each
        example."""
        self._eval_state.clear(self._static_batch_size(x) or 0)
        return super().evaluate(x, *args, **kwargs)

    def figures(self):
        """``FamilyFigures`` of this SampleRNN (see ``samplenet.models.figures``)."""
        H, Q, L = self.dim, self.q_levels, self.num_rnn_layers
        gates = 4 if self.rnn_type == "lstm" else 3
        tier_macs = tier_floats = 0.0
        for tier in self.tiers:
            size, ratio = tier.frame_size, tier.upsample_ratio
            rnn = sum(((2 * H if self.skip_connections and layer else H) + H) * gates * H
                      for layer in range(L))
            tier_macs += (size * H + rnn + H * ratio * H) / size
            tier_floats += (size + H + L * (2 * gates + 1) * H + ratio * H) / size
        mlp = self.sample_mlp
        head_macs = (mlp.mlp_layers - 1) * H * H + H * Q
        top = self.frame_sizes[-1]
        length = self.overlap + top

        label = tf.zeros((1,), tf.int32) if self.num_classes else None

        def measure():
            return measured_span(lambda x: self.forward(x, label)[0], length,
                                  position=0, channels=Q)

        return FamilyFigures(
            depth=1 + len(self.tiers) * (L + 1) + mlp.mlp_layers,
            depth_rule=f"top input projection + {len(self.tiers)} tiers x ({L} RNN + "
                       f"upsampling) + {mlp.mlp_layers} MLP layers",
            receptive_field=None, frame_context=top,
            flops_per_sample={"generation": 2.0 * (tier_macs + head_macs),
                              "training": 2.0 * BACKWARD_FACTOR * (tier_macs + head_macs)},
            activation_floats=mlp.emb_size + 2 * H * mlp.mlp_layers + 2 * Q + tier_floats,
            default_seq_len=self.seq_len, measure=measure,
            notes=("recurrent: the receptive field is unbounded (the RNN state carries the "
                   f"whole past); the top tier reads frames of {top} samples (frame_context)",))

    # ----- suggestion --------------------------------------------------------------------
    default_preset = "samplernn_3tier"
    training_length_key = "seq_len"
    suggests_quantization = True

    @classmethod
    def suggest_structure(cls, base, span, report):
        """Frame sizes from the preset's lowest frame, growing by SUGGESTED_FRAME_RATIO until
        the top frame spans ``span`` (at most MAX_SUGGESTED_TOP_FRAME; at least the preset's
        number of tiers); ``seq_len`` whole top frames, at least the preset's."""
        sizes, rate = [base["frame_sizes"][0]], base["sample_rate"]
        while (sizes[-1] < span and sizes[-1] * SUGGESTED_FRAME_RATIO <= MAX_SUGGESTED_TOP_FRAME) \
                or len(sizes) < len(base["frame_sizes"]):
            sizes.append(sizes[-1] * SUGGESTED_FRAME_RATIO)
        top = sizes[-1]
        seq_len = -(-max(base["seq_len"], top) // top) * top
        reasons = [f"frame_sizes {sizes} ({len(sizes) + 1}-tier, each frame "
                   f"{SUGGESTED_FRAME_RATIO}x the one below, from the preset's {sizes[0]}): a "
                   f"top frame of {top} samples ({milliseconds(top, rate)})",
                   f"seq_len {seq_len}: whole top frames, at least the preset's "
                   f"{base['seq_len']}"]
        return SuggestedStructure({"frame_sizes": sizes, "seq_len": seq_len}, top, reasons)

    @classmethod
    def training_length_step(cls, config):
        """Subsequences are whole top frames."""
        return config["frame_sizes"][-1]

    def covered_samples(self):
        """The top frame: what the top tier reads at once (the RNN state carries the rest)."""
        return self.frame_sizes[-1]

    # ----- generation (one step of the shared sampler's loop) ----------------------------
    # State: ``(window, states, conditioning)``: ``window`` ``(batch, overlap)`` holds the last
    # samples, ``states[k]`` tier ``k``'s recurrent state, ``conditioning[k]`` tier ``k``'s
    # last upsampled output ``(batch, ratio_k, dim)``. Generation starts at a top-frame
    # boundary, so ``index`` (samples since the start) says which tiers run at a step.
    @property
    def chunk_granularity(self):
        """Chunks are whole top frames."""
        return self.overlap

    def start_generation(self, batch_size, prime, labels, num_samples=None):
        """From h0 and silence, or after running the tiers over ``prime`` (left-padded with
        silence to whole top frames). Context: ``labels`` as int32 or None."""
        silence = silence_code(self.q_levels, self.quantization)
        states = self.initial_states(batch_size)
        window = tf.fill([batch_size, self.overlap], silence)
        if prime is not None:
            codes = encode(prime, self.q_levels, self.quantization)
            pad = (-codes.shape[1]) % self.overlap
            padded = np.concatenate([np.full((batch_size, self.overlap + pad), silence, np.int32),
                                     codes], axis=1)
            labels_tensor = None if labels is None else tf.constant(labels)
            _, states = self.forward(padded, labels_tensor, compute_logits=False)
            window = tf.constant(padded[:, -self.overlap:])
        conditioning = [tf.zeros([batch_size, tier.upsample_ratio, self.dim],
                                 self.compute_dtype) for tier in self.tiers]
        labels = None if labels is None else tf.convert_to_tensor(labels, tf.int32)
        return sampler.Start((window, states, conditioning), labels)

    def generation_scope(self):
        """Every ``Linear`` layer's kernel is computed once per loop, not once per step."""
        mlp = self.sample_mlp
        return frozen_kernels([layer for tier in self.tiers
                               for layer in (tier.input_projection, tier.upsampling)]
                              + [mlp.window_projection, *mlp.hidden, mlp.output_projection])

    def loop_context(self, labels):
        """``(the sample MLP's level table, class vectors (batch, dim) or None)``."""
        return (self.sample_mlp.lookup_table(),
                None if labels is None else self._class_vector(labels))

    def predict_next(self, state, context, chunk_inputs, step, index):
        """Run the tiers whose frame starts at ``index``, then the sample MLP: logits
        ``(batch, q_levels)`` of the sample at ``index``."""
        window, states, conditioning = state
        table, class_vector = context
        states, conditioning = list(states), list(conditioning)
        top = len(self.tiers) - 1
        for k in reversed(range(len(self.tiers))):
            size = self.frame_sizes[k]

            def run_tier(k=k, size=size):
                frame = self._scale(window[:, self.overlap - size:])
                if k == top:
                    above = class_vector
                else:
                    ratio = self.tiers[k + 1].upsample_ratio
                    above = tf.gather(conditioning[k + 1], (index // size) % ratio, axis=1)
                return self.tiers[k].step(frame, above, states[k])

            conditioning[k], states[k] = tf.cond(
                tf.equal(index % size, 0), run_tier, lambda k=k: (conditioning[k], states[k]))
        below = tf.gather(conditioning[0], index % self.frame_sizes[0], axis=1)
        logits = self.sample_mlp.step(window[:, self.overlap - self.frame_sizes[0]:], below,
                                      table)
        return logits, (window, states, conditioning)

    def append(self, state, value):
        window, states, conditioning = state
        return tf.concat([window[:, 1:], value[:, None]], axis=1), states, conditioning

    def generation_logits(self, samples, label=None):
        """Logits the generation loop computes when fed ``samples`` (teacher forcing).

        ``samples`` is shaped like the training input ``(batch, overlap + length)``; the loop
        starts from the initial state with ``samples[:, :overlap]`` as its window and is fed
        ``samples[:, overlap:]``. The result equals ``call`` on the same input (to float
        rounding): the consistency property between training and generation.
        """
        self.ensure_built()
        samples = tf.convert_to_tensor(samples, tf.int32)
        start = self.start_generation(int(samples.shape[0]), None, label)
        _, states, conditioning = start.state
        start = start._replace(state=(samples[:, :self.overlap], states, conditioning))
        return sampler.teacher_forced(self, start, samples[:, self.overlap:])

    def get_config(self):
        return {"frame_sizes": list(self.frame_sizes), "dim": self.dim,
                "rnn_type": self.rnn_type, "num_rnn_layers": self.num_rnn_layers,
                "skip_connections": self.skip_connections, "learn_h0": self.learn_h0,
                "emb_size": self.emb_size, "mlp_layers": self.mlp_layers,
                "q_levels": self.q_levels, "quantization": self.quantization,
                "weight_norm": self.weight_norm, "num_classes": self.num_classes,
                "seq_len": self.seq_len, "sample_rate": self.sample_rate}
