"""SampleRNN (Mehri et al., ICLR 2017) with any number of frame-level tiers."""
import keras
import numpy as np
import tensorflow as tf

from samplenet.quantization import check_quantization, decode, encode, silence_code
from samplenet.layers.frame_rnn import FrameRNN
from samplenet.layers.linear import frozen_kernels
from samplenet.layers.sample_mlp import SampleMLP
from samplenet.models.base import CategoricalAutoregressive
from samplenet.models.registry import register_family
from samplenet.ops import recurrent, sampling
from samplenet.ops.losses import masked_accuracy, masked_cross_entropy
from samplenet.validation import check_int, check_positive_int


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
    kind = "autoregressive"
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
        self._loop = None
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
        """Levels -> frame-tier inputs in [-2, 2]."""
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
          samples: int32 ``(batch, overlap + length)``; length a multiple of the top frame.
          label: int32 ``(batch,)`` class ids (global conditioning) or None.
          states: per-tier states (lowest first) or None for the initial states.
          compute_logits: False skips the sample-level MLP (priming).
        Returns:
          ``(logits (batch, length, q_levels) or None, final per-tier states)``.
        """
        samples = tf.convert_to_tensor(samples, tf.int32)
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
            inputs = samples[:, self.overlap - size: self.overlap - size + length]
            frames = tf.reshape(self._scale(inputs), [batch, length // size, size])
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

    # ----- generation --------------------------------------------------------------------
    def _loop_body(self, table, temperature, seed, class_vector, forced):
        """Build the per-sample step of the generation loop.

        Loop state: ``(i, position, window, states, conditioning, codes, logits)`` where
        ``window`` ``(batch, overlap)`` holds the last samples, ``conditioning[k]`` the last
        upsampled output of tier ``k`` ``(batch, ratio_k, dim)``, and ``position`` counts
        samples since the (frame-aligned) start of generation.
        """
        top = len(self.tiers) - 1

        def body(i, position, window, states, conditioning, codes, logits_out):
            states, conditioning = list(states), list(conditioning)
            for k in reversed(range(len(self.tiers))):
                size = self.frame_sizes[k]

                def run_tier(k=k, size=size):
                    frame = self._scale(window[:, self.overlap - size:])
                    if k == top:
                        above = class_vector
                    else:
                        ratio = self.tiers[k + 1].upsample_ratio
                        above = tf.gather(conditioning[k + 1], (position // size) % ratio,
                                          axis=1)
                    return self.tiers[k].step(frame, above, states[k])

                conditioning[k], states[k] = tf.cond(
                    tf.equal(position % size, 0), run_tier,
                    lambda k=k: (conditioning[k], states[k]))
            below = tf.gather(conditioning[0], position % self.frame_sizes[0], axis=1)
            logits = self.sample_mlp.step(window[:, self.overlap - self.frame_sizes[0]:],
                                          below, table)
            if forced is None:
                level = sampling.sample_logits(logits, temperature,
                                               sampling.step_seed(seed, position))
            else:
                level = forced[:, i]
            window = tf.concat([window[:, 1:], level[:, None]], axis=1)
            codes = codes.write(i, level)
            if logits_out is not None:
                logits_out = logits_out.write(i, tf.cast(logits, tf.float32))
            return i + 1, position + 1, window, states, conditioning, codes, logits_out

        return body

    def _run_loop(self, state, num_steps, temperature, seed, label, forced, return_logits):
        """Run ``num_steps`` samples from ``state`` = (position, window, states,
        conditioning). Returns (codes (batch, num_steps), logits or None, new state)."""
        with frozen_kernels(self._projections()):
            return self._run_frozen_loop(state, num_steps, temperature, seed, label, forced,
                                         return_logits)

    def _projections(self):
        """Every ``Linear`` layer of the model (their kernels stay fixed during generation)."""
        mlp = self.sample_mlp
        return ([layer for tier in self.tiers for layer in (tier.input_projection,
                                                             tier.upsampling)]
                + [mlp.window_projection, *mlp.hidden, mlp.output_projection])

    def _run_frozen_loop(self, state, num_steps, temperature, seed, label, forced,
                         return_logits):
        position, window, states, conditioning = state
        class_vector = self._class_vector(label) if label is not None else None
        body = self._loop_body(self.sample_mlp.lookup_table(), temperature, seed,
                               class_vector, forced)
        codes = tf.TensorArray(tf.int32, size=num_steps)
        logits = tf.TensorArray(tf.float32, size=num_steps) if return_logits else None
        loop_vars = (tf.constant(0), position, window, states, conditioning, codes, logits)
        if logits is None:
            def no_logits_body(*args):
                return body(*args, None)[:-1]
            loop_vars = loop_vars[:-1]
            result = tf.while_loop(lambda i, *_: i < num_steps, no_logits_body, loop_vars)
            logits_tensor = None
        else:
            result = tf.while_loop(lambda i, *_: i < num_steps, body, loop_vars)
            logits_tensor = tf.transpose(result[6].stack(), [1, 0, 2])
        _, position, window, states, conditioning, codes = result[:6]
        return (tf.transpose(codes.stack()), logits_tensor,
                (position, window, states, conditioning))

    def _compiled_loop(self):
        if self._loop is None:
            self._loop = tf.function(self._run_loop, jit_compile=True, reduce_retracing=True)
        return self._loop

    def _start_state(self, batch_size, prime_codes, label):
        """Generation state at a frame boundary: from h0 and silence, or after a prime."""
        silence = silence_code(self.q_levels, self.quantization)
        states = self.initial_states(batch_size)
        window = tf.fill([batch_size, self.overlap], silence)
        if prime_codes is not None:
            pad = (-prime_codes.shape[1]) % self.overlap
            padded = np.concatenate([np.full((batch_size, self.overlap + pad), silence, np.int32),
                                     prime_codes], axis=1)
            _, states = self.forward(padded, label, compute_logits=False)
            window = tf.constant(padded[:, -self.overlap:])
        conditioning = [tf.zeros([batch_size, tier.upsample_ratio, self.dim],
                                 self.compute_dtype) for tier in self.tiers]
        return (tf.constant(0), window, states, conditioning)

    def _prime_codes(self, prime, batch_size):
        audio = sampling.check_prime(prime, batch_size)
        return None if audio is None else encode(audio, self.q_levels, self.quantization)

    def generate_chunks(self, num_samples, batch_size=1, temperature=1.0, seed=None,
                        prime=None, condition=None, chunk_samples=16000):
        """Generate audio chunk by chunk with one compiled loop per chunk.

        Args:
          num_samples: samples per sequence (> 0).
          batch_size: sequences generated together.
          temperature: scalar or ``(batch_size,)``, > 0.
          seed: int for reproducible output, None for fresh entropy. The output for a seed
            does not depend on ``chunk_samples``.
          prime: audio in [-1, 1], ``(time,)`` or ``(1 or batch, time)``, any length; the tiers
            run over it (left-padded with silence to whole top frames) and generation
            continues it. The prime itself is not part of the output.
          condition: class ids ``(batch,)`` or one id for all (required when
            ``num_classes`` > 0, else None).
          chunk_samples: samples per chunk (rounded up to whole top frames).
        Yields:
          ``(codes int32 (batch, n), audio float32 (batch, n))`` NumPy chunks.
        """
        check_positive_int("num_samples", num_samples)
        check_positive_int("batch_size", batch_size)
        temperature = sampling.check_temperature(temperature, batch_size)
        labels = sampling.check_condition(condition, batch_size, self.num_classes)
        self.ensure_built()
        seed = tf.constant(sampling.make_seed(seed))
        chunk = max(self.overlap, -(-int(chunk_samples) // self.overlap) * self.overlap)
        state = self._start_state(batch_size, self._prime_codes(prime, batch_size), labels)
        loop = self._compiled_loop()
        label_tensor = None if labels is None else tf.constant(labels)
        produced = 0
        while produced < num_samples:
            steps = min(chunk, num_samples - produced)
            codes, _, state = loop(state, steps, tf.constant(temperature), seed, label_tensor,
                                   None, False)
            codes = codes.numpy()
            produced += steps
            yield codes, decode(codes, self.q_levels, self.quantization)

    def generation_logits(self, samples, label=None):
        """Logits the generation loop computes when fed ``samples`` (teacher forcing).

        ``samples`` is shaped like the training input ``(batch, overlap + length)``; the loop
        starts from the initial state with ``samples[:, :overlap]`` as its window and is fed
        ``samples[:, overlap:]``. The result equals ``call`` on the same input (to float
        rounding): the consistency property between training and generation.
        """
        self.ensure_built()
        samples = tf.convert_to_tensor(samples, tf.int32)
        batch = int(samples.shape[0])
        length = int(samples.shape[1]) - self.overlap
        position, _, states, conditioning = self._start_state(batch, None, None)
        state = (position, samples[:, :self.overlap], states, conditioning)
        label = None if label is None else tf.convert_to_tensor(label, tf.int32)
        _, logits, _ = self._compiled_loop()(state, length, tf.ones([batch]),
                                             tf.zeros([2], tf.int32), label,
                                             samples[:, self.overlap:], True)
        return logits

    def get_config(self):
        return {"frame_sizes": list(self.frame_sizes), "dim": self.dim,
                "rnn_type": self.rnn_type, "num_rnn_layers": self.num_rnn_layers,
                "skip_connections": self.skip_connections, "learn_h0": self.learn_h0,
                "emb_size": self.emb_size, "mlp_layers": self.mlp_layers,
                "q_levels": self.q_levels, "quantization": self.quantization,
                "weight_norm": self.weight_norm, "num_classes": self.num_classes,
                "seq_len": self.seq_len, "sample_rate": self.sample_rate}
