"""Residual vector quantizer (SoundStream, Zeghidour et al. 2021): a cascade of codebooks,
each quantizing the residual the previous ones left, with EMA codebooks, k-means
initialisation, dead-code replacement and quantizer dropout."""
import keras
import tensorflow as tf
from samplenet.validation import check_positive_int


def _nearest(vectors, codebook):
    """Index of the nearest codebook row (squared Euclidean) of each vector.

    vectors ``(M, D)``, codebook ``(K, D)`` -> int32 ``(M,)``.
    """
    distances = (tf.reduce_sum(tf.square(vectors), axis=1, keepdims=True)
                 - 2.0 * tf.matmul(vectors, codebook, transpose_b=True)
                 + tf.reduce_sum(tf.square(codebook), axis=1)[None, :])
    return tf.argmin(distances, axis=1, output_type=tf.int32)


def _cluster_statistics(vectors, assignments, weights, num_codes):
    """Per code: the (weighted) number of vectors assigned and their sum.

    Returns ``counts (K,)`` and ``sums (K, D)``.
    """
    counts = tf.math.unsorted_segment_sum(weights, assignments, num_codes)
    sums = tf.math.unsorted_segment_sum(vectors * weights[:, None], assignments, num_codes)
    return counts, sums


def _all_replicas_sum(*tensors):
    """Sum statistics over ``tf.distribute`` replicas (identity without a strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensors
    return tuple(context.all_reduce(tf.distribute.ReduceOp.SUM, t) for t in tensors)


@keras.saving.register_keras_serializable(package="samplenet")
class ResidualVectorQuantizer(keras.layers.Layer):
    """``num_quantizers`` codebooks of ``codebook_size`` vectors; quantizer ``i`` quantizes
    the residual ``r_i = x - q_1 - ... - q_{i-1}`` to its nearest code ``q_i``; the output is
    ``q_1 + ... + q_n`` with straight-through gradients (identity to the input).

    Codebooks are non-trainable weights, updated in the training call (``training=True``):

    - **k-means initialisation** on the first training batch: for each quantizer in turn,
      k-means++ seeding then ``kmeans_iterations`` Lloyd iterations on the batch's residuals
      (all examples, no dropout); the EMA state is set from the same final clusters (counts =
      cluster sizes, sums = cluster sums), so the codebook equals ``sums / counts`` from the
      start.
    - **EMA update** after assigning the batch with the current codebooks:
      ``counts <- decay * counts + (1 - decay) * n_k``, ``sums <- decay * sums + (1 - decay) *
      sum of the vectors assigned to k``, codebook ``= sums / smoothed counts`` with Laplace
      smoothing ``(counts + eps) / (total + K * eps) * total``.
    - **Dead codes**: after the update, a code whose EMA count is below
      ``dead_code_threshold * M_i / codebook_size`` is replaced by a random vector that
      quantizer ``i`` received in this batch, and its EMA state restarts at the uniform share
      (count ``M_i / codebook_size``). ``M_i`` is the number of vectors quantizer ``i`` saw in the
      batch (batch x frames x the share of examples keeping it under dropout), so the threshold
      is a fraction of a code's share under uniform usage. An absolute count would have to be
      re-tuned to every batch size and codebook size: SoundStream's "count below 2" is
      ``dead_code_threshold = 2 * K / M``; with 32 one-second segments at 50 frames/s (M = 1600)
      and K = 1024, an absolute 2 exceeds the uniform share (1.56) and kills every code.
    - **Quantizer dropout**: with probability ``quantizer_dropout`` an example uses only the
      first ``n_q ~ U{1, ..., N}`` quantizers (both ends included), so one model serves
      several bitrates; the EMA statistics count only the quantizers an example used.

    The commitment loss of quantizer ``i`` is ``mean ||r_i - stop_gradient(q_i)||^2`` over the
    vectors that used it; residuals subtract ``stop_gradient(q_i)``, so every quantizer's term
    has a gradient to the input (not only the first one's).

    The layer computes in float32 under mixed precision (unless given another ``dtype``).
    Under ``tf.distribute`` the batch statistics are summed over replicas and the EMA state
    keeps the first replica's value (k-means and the replacement vectors come from its batch).

    Args:
      num_quantizers: number of codebooks ``N``.
      codebook_size: codes per codebook ``K`` (``log2(K)`` bits per code).
      ema_decay: EMA decay in (0, 1).
      dead_code_threshold: fraction (>= 0) of the uniform share under which a code is dead;
        0 disables replacement.
      quantizer_dropout: probability in [0, 1] that a training example draws its ``n_q``.
      kmeans_iterations: Lloyd iterations of the initialisation (>= 1).
      laplace_epsilon: Laplace smoothing of the EMA counts (> 0).

    Call: ``layer(latent, training=None, num_quantizers=None, return_details=False)`` with
    latent ``(batch, frames, latent_dim)``; returns the quantized latent (same shape), or with
    ``return_details`` a dict: ``quantized``; ``codes`` int32 ``(batch, n, frames)``;
    ``commitment_losses`` ``(n,)``; ``perplexities`` ``(n,)`` (``exp`` of the entropy of each
    codebook's usage in the batch: 1 = one code used, K = uniform); ``num_quantizers_used``
    int32 ``(batch,)``. ``num_quantizers`` (Python int, default ``N``) uses only the first
    ones (lower bitrate).
    """

    def __init__(self, num_quantizers=8, codebook_size=1024, ema_decay=0.99,
                 dead_code_threshold=0.1, quantizer_dropout=1.0, kmeans_iterations=10,
                 laplace_epsilon=1e-5, **kwargs):
        kwargs.setdefault("dtype", "float32")  # distances and EMA statistics need float32
        super().__init__(**kwargs)
        for name, value in (("num_quantizers", num_quantizers),
                            ("codebook_size", codebook_size),
                            ("kmeans_iterations", kmeans_iterations)):
            check_positive_int(name, value)
        for name, value, valid, expected in (
                ("ema_decay", ema_decay, lambda v: 0 < v < 1, "in (0, 1)"),
                ("dead_code_threshold", dead_code_threshold, lambda v: v >= 0, ">= 0"),
                ("quantizer_dropout", quantizer_dropout, lambda v: 0 <= v <= 1, "in [0, 1]"),
                ("laplace_epsilon", laplace_epsilon, lambda v: v > 0, "> 0")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not valid(value):
                raise ValueError(f"{name} must be a number {expected}, got {value!r}")
        self.num_quantizers = num_quantizers
        self.codebook_size = codebook_size
        self.ema_decay = ema_decay
        self.dead_code_threshold = dead_code_threshold
        self.quantizer_dropout = quantizer_dropout
        self.kmeans_iterations = kmeans_iterations
        self.laplace_epsilon = laplace_epsilon

    def build(self, input_shape):
        self.latent_dim = int(input_shape[-1])
        shape = (self.num_quantizers, self.codebook_size)
        state = {"trainable": False, "aggregation": "only_first_replica"}
        self.codebooks = self.add_weight(name="codebooks", shape=shape + (self.latent_dim,),
                                         initializer=keras.initializers.RandomNormal(), **state)
        self.ema_counts = self.add_weight(name="ema_counts", shape=shape,
                                          initializer="zeros", **state)
        self.ema_sums = self.add_weight(name="ema_sums", shape=shape + (self.latent_dim,),
                                        initializer="zeros", **state)
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros",
                                           **state)

    # ----- public API --------------------------------------------------------------------
    def check_num_quantizers(self, num_quantizers):
        """``num_quantizers`` (default ``N``) after checking it is an int in ``[1, N]``."""
        if num_quantizers is None:
            return self.num_quantizers
        if isinstance(num_quantizers, bool) or not isinstance(num_quantizers, int) \
                or not 1 <= num_quantizers <= self.num_quantizers:
            raise ValueError(f"num_quantizers must be an integer in [1, {self.num_quantizers}], "
                             f"got {num_quantizers!r}")
        return num_quantizers

    def sample_num_quantizers(self, batch_size, num_quantizers=None):
        """Quantizer dropout: int32 ``(batch,)`` counts; each is ``n ~ U{1, ..., n_max}``
        (inclusive) with probability ``quantizer_dropout``, else ``n_max``
        (``num_quantizers``, default ``N``)."""
        n_max = self.check_num_quantizers(num_quantizers)
        drawn = tf.random.uniform([batch_size], minval=1, maxval=n_max + 1, dtype=tf.int32)
        dropped = tf.random.uniform([batch_size]) < self.quantizer_dropout
        return tf.where(dropped, drawn, n_max)

    def encode(self, latent, num_quantizers=None):
        """Latent ``(batch, frames, latent_dim)`` -> int32 codes ``(batch, n, frames)``."""
        return self(latent, training=False, num_quantizers=num_quantizers,
                    return_details=True)["codes"]

    def decode(self, codes):
        """Codes ``(batch, n, frames)`` (n <= N, the first n codebooks) -> the quantized latent
        ``(batch, frames, latent_dim)`` float32: the sum of the selected codes."""
        codes = tf.convert_to_tensor(codes, tf.int32)
        num_used = self.check_num_quantizers(codes.shape[1])
        codebooks = tf.convert_to_tensor(self.codebooks)
        return tf.add_n([tf.gather(codebooks[i], codes[:, i]) for i in range(num_used)])

    # ----- layer call --------------------------------------------------------------------
    def call(self, inputs, training=None, num_quantizers=None, return_details=False):
        latent = tf.cast(inputs, tf.float32)
        if latent.shape.rank != 3:
            raise ValueError(f"ResidualVectorQuantizer expects (batch, frames, latent_dim), "
                             f"got shape {latent.shape}")
        num_used = self.check_num_quantizers(num_quantizers)
        batch, frames = tf.shape(latent)[0], tf.shape(latent)[1]
        flat = tf.reshape(latent, [-1, self.latent_dim])
        if training:
            state = self._state_after_initialization(tf.stop_gradient(flat))
            used = self.sample_num_quantizers(batch, num_used)
        else:
            state = self._current_state()
            used = tf.fill([batch], num_used)
        active = tf.cast(tf.range(num_used)[None, :] < used[:, None], tf.float32)
        active_rows = tf.reshape(tf.repeat(active[:, None, :], frames, axis=1), [-1, num_used])

        quantized, codes, residuals, commitment = self._quantize(flat, active_rows, num_used,
                                                                 state[0])
        perplexities = []
        for i in range(num_used):
            usage = tf.math.unsorted_segment_sum(active_rows[:, i], codes[:, i],
                                                 self.codebook_size)
            probabilities = tf.math.divide_no_nan(usage, tf.reduce_sum(usage))
            perplexities.append(tf.exp(-tf.reduce_sum(
                tf.math.multiply_no_nan(tf.math.log(probabilities), probabilities))))
        if training:
            self._update_codebooks(residuals, codes, active_rows, *state)

        quantized = tf.reshape(quantized, tf.shape(latent))
        outputs = latent + tf.stop_gradient(quantized - latent)
        if not return_details:
            return outputs
        return {"quantized": outputs,
                "codes": tf.transpose(tf.reshape(codes, [batch, frames, num_used]), [0, 2, 1]),
                "commitment_losses": tf.stack(commitment),
                "perplexities": tf.stack(perplexities),
                "num_quantizers_used": used}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    # ----- internals ---------------------------------------------------------------------
    def _quantize(self, flat, active_rows, num_used, codebooks):
        """Residual quantization of ``flat (M, D)`` with per-row masks ``(M, n)`` by
        ``codebooks (N, K, D)``.

        Returns the quantized sum ``(M, D)``, codes ``(M, n)``, the residual each quantizer
        received (gradient-free copies) and the commitment loss of each quantizer.
        """
        residual = flat
        quantized = tf.zeros_like(flat)
        codes, residuals, commitment = [], [], []
        for i in range(num_used):
            weights = active_rows[:, i]
            indices = _nearest(tf.stop_gradient(residual), codebooks[i])
            chosen = tf.stop_gradient(tf.gather(codebooks[i], indices))
            squared = tf.reduce_sum(tf.square(residual - chosen), axis=1)
            commitment.append(tf.math.divide_no_nan(tf.reduce_sum(weights * squared),
                                                    tf.reduce_sum(weights) * self.latent_dim))
            quantized += weights[:, None] * chosen
            codes.append(indices)
            residuals.append(tf.stop_gradient(residual))
            residual = residual - chosen
        return quantized, tf.stack(codes, axis=1), residuals, commitment

    def _smoothed(self, counts):
        total = tf.reduce_sum(counts)
        return (counts + self.laplace_epsilon) / (
            total + self.codebook_size * self.laplace_epsilon) * total

    def _update_codebooks(self, residuals, codes, active_rows, old_codebooks, old_counts,
                          old_sums):
        """EMA update then dead-code replacement of the codebooks that were used, from the
        state ``(codebooks, counts, sums)`` the batch was quantized with; assigns the weights
        (outside any control flow, as ``tf.distribute`` requires)."""
        codebooks, counts_all, sums_all = [], [], []
        for i, residual in enumerate(residuals):
            weights = active_rows[:, i]
            batch_counts, batch_sums = _cluster_statistics(residual, codes[:, i], weights,
                                                           self.codebook_size)
            batch_counts, batch_sums, seen = _all_replicas_sum(
                batch_counts, batch_sums, tf.reduce_sum(weights))
            counts = self.ema_decay * old_counts[i] + (1 - self.ema_decay) * batch_counts
            sums = self.ema_decay * old_sums[i] + (1 - self.ema_decay) * batch_sums
            codebook = sums / self._smoothed(counts)[:, None]

            share = seen / self.codebook_size
            dead = counts < self.dead_code_threshold * share
            picks = tf.random.categorical(tf.math.log(weights + 1e-30)[None, :],
                                          self.codebook_size, dtype=tf.int32)[0]
            fresh = tf.gather(residual, picks)
            codebooks.append(tf.where(dead[:, None], fresh, codebook))
            counts_all.append(tf.where(dead, share, counts))
            sums_all.append(tf.where(dead[:, None], fresh * share, sums))
        num_used = len(residuals)
        if num_used < self.num_quantizers:
            codebooks.extend(tf.unstack(old_codebooks[num_used:]))
            counts_all.extend(tf.unstack(old_counts[num_used:]))
            sums_all.extend(tf.unstack(old_sums[num_used:]))
        self.codebooks.assign(tf.stack(codebooks))
        self.ema_counts.assign(tf.stack(counts_all))
        self.ema_sums.assign(tf.stack(sums_all))
        self.initialized.assign(1.0)

    def _state_after_initialization(self, flat):
        """``(codebooks, ema_counts, ema_sums)``: the weights, or on the first training call
        their k-means initialisation from ``flat (M, D)``."""
        return tf.cond(tf.convert_to_tensor(self.initialized) > 0.5, self._current_state,
                       lambda: self._kmeans_initialize(flat))

    def _current_state(self):
        return (tf.convert_to_tensor(self.codebooks), tf.convert_to_tensor(self.ema_counts),
                tf.convert_to_tensor(self.ema_sums))

    def _kmeans_plus_plus(self, data):
        """k-means++ seeding: ``codebook_size`` rows of ``data (M, D)``, each drawn with
        probability proportional to its squared distance to the nearest one drawn so far."""
        num_rows = tf.shape(data)[0]
        first = tf.random.uniform([], maxval=num_rows, dtype=tf.int32)
        seeds = tf.TensorArray(tf.float32, size=self.codebook_size,
                               element_shape=[self.latent_dim]).write(0, data[first])
        nearest = tf.reduce_sum(tf.square(data - data[first]), axis=1)

        def body(k, seeds, nearest):
            pick = tf.random.categorical(tf.math.log(nearest + 1e-30)[None, :], 1,
                                         dtype=tf.int32)[0, 0]
            seeds = seeds.write(k, data[pick])
            nearest = tf.minimum(nearest, tf.reduce_sum(tf.square(data - data[pick]), axis=1))
            return k + 1, seeds, nearest

        _, seeds, _ = tf.while_loop(lambda k, *_: k < self.codebook_size, body,
                                    (tf.constant(1), seeds, nearest))
        return seeds.stack()

    def _kmeans_initialize(self, flat):
        """k-means of each quantizer's residuals in turn -> ``(codebooks, counts, sums)``, the
        EMA state of the final clusters (``codebooks == sums / counts`` where counts > 0)."""
        residual = flat
        ones = tf.ones_like(flat[:, 0])
        codebooks, counts_all, sums_all = [], [], []
        for _ in range(self.num_quantizers):
            centroids = self._kmeans_plus_plus(residual)
            for _ in range(self.kmeans_iterations):
                assignments = _nearest(residual, centroids)
                counts, sums = _cluster_statistics(residual, assignments, ones,
                                                   self.codebook_size)
                centroids = tf.where(counts[:, None] > 0,
                                     sums / tf.maximum(counts, 1.0)[:, None], centroids)
            codebooks.append(centroids)
            counts_all.append(counts)
            sums_all.append(sums)
            residual = residual - tf.gather(centroids, _nearest(residual, centroids))
        return tf.stack(codebooks), tf.stack(counts_all), tf.stack(sums_all)

    def get_config(self):
        return {**super().get_config(), "num_quantizers": self.num_quantizers,
                "codebook_size": self.codebook_size, "ema_decay": self.ema_decay,
                "dead_code_threshold": self.dead_code_threshold,
                "quantizer_dropout": self.quantizer_dropout,
                "kmeans_iterations": self.kmeans_iterations,
                "laplace_epsilon": self.laplace_epsilon}
