"""Training losses of the codec (SoundStream / EnCodec) and the curriculum of the
downsampled-waveform objective.

Audio is ``(batch, time)`` float32 in [-1, 1]; every loss is a scalar float32 that is 0 when
the estimate equals the reference. (The commitment loss belongs to
``samplenet.layers.residual_vector_quantizer``, which computes it per quantizer.)
"""
import keras
import tensorflow as tf

from samplenet.ops import spectral

MEL_WINDOWS = (64, 128, 256, 512, 1024, 2048)
STFT_WINDOWS = (64, 128, 256, 512, 1024, 2048)


def _safe_norm(values, axis):
    """Euclidean norm with a zero (not NaN) gradient at 0."""
    squared = tf.reduce_sum(tf.square(values), axis=axis)
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, 1.0)), 0.0)


def multiscale_mel_loss(reference, estimate, sample_rate, windows=MEL_WINDOWS, num_mels=64,
                        eps=1e-5):
    """SoundStream's multi-scale mel reconstruction loss.

    For each window length ``s`` (hop ``s / 4``, ``num_mels`` mel bands of magnitudes ``S``,
    see ``samplenet.ops.spectral.mel_spectrogram``):
    ``mean |S - S'| + sqrt(s / 2) * mean_frames rms(log(S + eps) - log(S' + eps))`` where the
    first mean runs over batch, frames and bands and ``rms`` is the L2 norm over bands divided
    by ``sqrt(num_mels)`` (so the value does not grow with ``num_mels`` and stays of order 1-10,
    the scale EnCodec's loss weights assume); the result is the mean over the windows.
    Signals must be at least ``max(windows)`` samples long.
    """
    reference = tf.cast(reference, tf.float32)
    estimate = tf.cast(estimate, tf.float32)
    terms = []
    for window in windows:
        both = spectral.mel_spectrogram(tf.concat([reference, estimate], axis=0), sample_rate,
                                        window, window // 4, num_mels)
        mel_reference, mel_estimate = tf.split(both, 2, axis=0)
        linear = tf.reduce_mean(tf.abs(mel_reference - mel_estimate))
        logs = tf.math.log(mel_reference + eps) - tf.math.log(mel_estimate + eps)
        rms = _safe_norm(logs, axis=-1) / num_mels ** 0.5
        terms.append(linear + (window / 2) ** 0.5 * tf.reduce_mean(rms))
    return tf.add_n(terms) / len(terms)


def multiscale_stft_loss(reference, estimate, windows=STFT_WINDOWS, eps=1e-5):
    """Full-band multi-resolution STFT magnitude loss (Yamamoto et al., 2020).

    For each window length ``s`` (hop ``s / 4``, FFT size the next power of 2, every bin from
    DC to Nyquist; magnitudes ``X``, ``Y`` from ``samplenet.ops.spectral.stft_magnitude``):
    the spectral convergence ``||X - Y||_F / ||X||_F`` (per signal, then the batch mean) plus
    the log-magnitude distance ``mean |log(X + eps) - log(Y + eps)|`` over batch, frames and
    bins; the result is the mean over the windows. Both terms are independent of the signal
    level and of ``s``: about 1 for unrelated broadband signals, more where the reference has
    near-silent bins (the log term; 6-9 for an untrained codec on builtin:plucked). Signals
    must be at least ``max(windows)`` samples long.
    """
    reference = tf.cast(reference, tf.float32)
    estimate = tf.cast(estimate, tf.float32)
    terms = []
    for window in windows:
        both = spectral.stft_magnitude(tf.concat([reference, estimate], axis=0), window,
                                       window // 4)
        magnitude_reference, magnitude_estimate = tf.split(both, 2, axis=0)
        convergence = _safe_norm(magnitude_reference - magnitude_estimate, axis=[1, 2]) / (
            _safe_norm(magnitude_reference, axis=[1, 2]) + eps)
        logs = tf.abs(tf.math.log(magnitude_reference + eps)
                      - tf.math.log(magnitude_estimate + eps))
        terms.append(tf.reduce_mean(convergence) + tf.reduce_mean(logs))
    return tf.add_n(terms) / len(terms)


def waveform_l1_loss(reference, estimate):
    """Mean absolute sample difference."""
    return tf.reduce_mean(tf.abs(tf.cast(reference, tf.float32) - tf.cast(estimate, tf.float32)))


def discriminator_hinge_loss(real_logits, fake_logits):
    """Hinge loss of a multi-scale discriminator: mean over scales of
    ``mean(relu(1 - D(x))) + mean(relu(1 + D(x')))``; lists of logits, one per scale."""
    terms = [tf.reduce_mean(tf.nn.relu(1.0 - tf.cast(real, tf.float32)))
             + tf.reduce_mean(tf.nn.relu(1.0 + tf.cast(fake, tf.float32)))
             for real, fake in zip(real_logits, fake_logits)]
    return tf.add_n(terms) / len(terms)


def generator_hinge_loss(fake_logits):
    """Adversarial loss of the generator: mean over scales of ``mean(relu(1 - D(x')))``."""
    return tf.add_n([tf.reduce_mean(tf.nn.relu(1.0 - tf.cast(fake, tf.float32)))
                     for fake in fake_logits]) / len(fake_logits)


def feature_matching_loss(real_features, fake_features, eps=1e-8):
    """EnCodec's relative feature matching: the mean over scales and layers of
    ``mean |f(x) - f(x')| / (mean |f(x)| + eps)``. Arguments: per scale, a list of the
    discriminator's feature maps; the real ones carry no gradient."""
    terms = []
    for real_maps, fake_maps in zip(real_features, fake_features):
        for real, fake in zip(real_maps, fake_maps):
            real = tf.stop_gradient(tf.cast(real, tf.float32))
            fake = tf.cast(fake, tf.float32)
            terms.append(tf.reduce_mean(tf.abs(real - fake)) / (tf.reduce_mean(tf.abs(real))
                                                                  + eps))
    return tf.add_n(terms) / len(terms)


def downsampled_waveform_loss(audio, stages, factors, weights):
    """Downsampled-waveform objective: ``sum_k weights[k] * mean |stages[k] - pool_k(audio)|``
    where ``pool_k`` averages ``audio (batch, time)`` over non-overlapping windows of
    ``factors[k]`` samples and ``stages[k]`` is ``(batch, time // factors[k])`` (the channel
    mean of the decoder's activations after upsampling block ``k``; see
    ``SeanetDecoder.call(..., return_stages=True)``). ``weights``: ``(num_stages,)``."""
    audio = tf.cast(audio, tf.float32)
    batch = tf.shape(audio)[0]
    terms = []
    for k, (stage, factor) in enumerate(zip(stages, factors)):
        pooled = tf.reduce_mean(tf.reshape(audio, [batch, -1, factor]), axis=-1)
        terms.append(weights[k] * tf.reduce_mean(tf.abs(tf.cast(stage, tf.float32) - pooled)))
    return tf.add_n(terms)


def check_waveform_schedule(schedule, num_stages):
    """Validate a curriculum of the downsampled-waveform objective and return it normalised.

    A schedule is a list of ``[first_epoch, [w_1, ..., w_num_stages]]`` entries with
    strictly increasing ``first_epoch`` starting at 0; ``w_k >= 0`` weighs decoder stage
    ``k`` (coarsest first). Epochs from ``first_epoch`` up to the next entry's use its
    weights; the last entry holds until the end. Example: ``[[0, [1, 1, 0, 0]], [5, [0.5,
    1, 1, 0.5]], [10, [0, 0.5, 1, 1]]]`` moves the weight from coarse to fine stages.
    Returns a list of ``[int, [float, ...]]``; ``ValueError`` naming the problem otherwise.
    """
    if not isinstance(schedule, (list, tuple)) or not schedule:
        raise ValueError(f"waveform_schedule must be a non-empty list of [first_epoch, "
                         f"weights] entries, got {schedule!r}")
    normalised = []
    for entry in schedule:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2 \
                or isinstance(entry[0], bool) or not isinstance(entry[0], int) \
                or not isinstance(entry[1], (list, tuple)):
            raise ValueError(f"waveform_schedule entries must be [first_epoch, weights], got "
                             f"{entry!r}")
        first_epoch, weights = entry
        if len(weights) != num_stages or any(
                isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0
                for w in weights):
            raise ValueError(f"waveform_schedule weights must be {num_stages} numbers >= 0 "
                             f"(one per decoder stage), got {weights!r}")
        normalised.append([first_epoch, [float(w) for w in weights]])
    epochs = [first for first, _ in normalised]
    if epochs[0] != 0 or any(b <= a for a, b in zip(epochs, epochs[1:])):
        raise ValueError(f"waveform_schedule first epochs must start at 0 and increase, got "
                         f"{epochs}")
    return normalised


def curriculum_weights(schedule, epoch):
    """Stage weights of a (validated) schedule at ``epoch`` (0-based)."""
    current = schedule[0][1]
    for first_epoch, weights in schedule:
        if first_epoch <= epoch:
            current = weights
    return current


class WaveformCurriculum(keras.callbacks.Callback):
    """Sets the stage weights of the downsampled-waveform objective at the start of each
    epoch from a schedule (see ``check_waveform_schedule``), by assigning the model's
    non-trainable ``waveform_stage_weights`` variable. Resuming at ``initial_epoch`` picks the
    weights of that epoch."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        self.model.waveform_stage_weights.assign(curriculum_weights(self.schedule, epoch))
