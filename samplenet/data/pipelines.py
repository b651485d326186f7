"""tf.data pipelines that feed the models: truncated-BPTT streams (SampleRNN), random windows
(WaveNet, linear AR) and fixed segments (codec).

Loading, shared by all pipelines:
  the examples of the split -> (with ``input_context``) this input pipeline's share of them:
  every ``num_input_pipelines``-th example from ``input_pipeline_id`` -> one parallel
  ``tf.data`` pass (``tf.numpy_function`` calling ``source.load``, ``num_parallel_calls=AUTOTUNE``,
  deterministic) that decodes each file once and keeps the audio in memory for the whole run.
  Files whose ``load`` raises ``samplenet.audio.AudioError`` (or that hold no samples, or NaN or
  infinite samples) are skipped: logged once per file and recorded, see ``dataset_skipped``.

  The decoded audio is held in one in-memory store rather than in ``Dataset.cache()``: the
  pipelines need the file lengths when they are built (to cut examples and schedule lanes, to
  draw windows uniformly over all positions, to fail when every file is bad) and random access
  to the audio (any example or window, by index), which a tf.data cache does not give
  (``tf.data.experimental.at`` on a cached dataset decodes the file again).

Quantization (``samplenet.quantization.encode_tf``) and spectral features run inside the graph.
Randomness is stateless, keyed on ``seed`` and an element or epoch index, so a pipeline yields
the same elements for the same seed whatever the global random state. Every pipeline ends with
``prefetch(AUTOTUNE)`` and ``pipeline_options()``; with ``repeat=True`` it is infinite and its
batches are full (``drop_remainder=True``).

``batch_size`` is always the global batch; with ``input_context`` each pipeline batches
``input_context.get_per_replica_batch_size(batch_size)`` elements.
"""
import dataclasses
import logging
import threading

import numpy as np
import tensorflow as tf

from samplenet import quantization as quant
from samplenet.audio import AudioError
from samplenet import config as schema
from samplenet.ops import spectral
from samplenet.validation import check_int, check_seconds

AUTOTUNE = tf.data.AUTOTUNE
LOCAL_CONDITION_KINDS = frozenset({"log-mel"})
_LOCAL_CONDITION_KEYS = frozenset({"kind", "hop", "num_mels", "frame_length"})
_MAX_LISTED = 10

_logger = logging.getLogger(__name__)
_SKIPPED = {}
_SKIPPED_LOCK = threading.Lock()


class UnusableSplit(ValueError):
    """Every file of a split is bad (unreadable, empty, NaN or silent); names the files."""


# --------------------------------------------------------------------------- skipped files

def dataset_skipped(source):
    """Files of ``source`` that the pipelines skipped while loading: a list of
    ``(key, reason)``, in the order met. Files the source itself rejected while listing are in
    ``source.skipped``."""
    with _SKIPPED_LOCK:
        return list(_SKIPPED.get(source.name, ()))


def _record_skip(source, key, reason):
    """Record a bad file once and log it once."""
    with _SKIPPED_LOCK:
        records = _SKIPPED.setdefault(source.name, [])
        if any(known == key for known, _ in records):
            return
        records.append((key, reason))
    _logger.warning("skipping %s of %s: %s", key, source.name, reason)


# --------------------------------------------------------------------------- validation


def _pipeline_batch_size(batch_size, input_context):
    check_int("batch_size", batch_size, 1)
    if input_context is None:
        return batch_size
    return input_context.get_per_replica_batch_size(batch_size)


def _replicas_per_pipeline(input_context):
    if input_context is None:
        return 1
    return max(1, input_context.num_replicas_in_sync // input_context.num_input_pipelines)


def _check_labels(source, with_labels):
    if with_labels and not source.num_classes:
        raise ValueError(f"with_labels=True but source {source.name!r} is unlabelled "
                         f"(num_classes={source.num_classes!r})")


# --------------------------------------------------------------------------- loading

@dataclasses.dataclass(frozen=True)
class _Store:
    """The decoded files of one input pipeline, concatenated.

    audio: float32 (total_samples,); starts, lengths: int64 (num_files,) offset and length of
    each file in ``audio``; labels: int32 (num_files,); keys: the files' example keys.
    """

    audio: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    keys: tuple

    def read(self, span_offsets, span_lengths, starts, size):
        """float32 tensor (B, size), in-graph: row b holds samples ``[starts[b], starts[b] +
        size)`` of the span of ``span_lengths[b]`` samples at ``span_offsets[b]`` in ``audio``
        (a file or an example); zeros outside the span (``starts`` may be negative)."""
        def copy_windows(offsets, lengths, firsts):
            windows = np.zeros((len(firsts), size), np.float32)
            for window, offset, length, first in zip(windows, offsets, lengths, firsts):
                low, high = max(first, 0), min(first + size, length)
                if high > low:
                    window[low - first:high - first] = self.audio[offset + low:offset + high]
            return windows

        windows = tf.numpy_function(copy_windows, [span_offsets, span_lengths, starts], tf.float32,
                                    stateful=False)
        windows.set_shape(starts.shape.concatenate([size]))
        return windows


def _split_examples(source, split, input_context):
    """This pipeline's examples of ``split``: all of them, or its shard of the file list."""
    examples = list(source.examples(split))
    if not examples:
        raise ValueError(f"source {source.name!r} has no examples in split {split!r}")
    if input_context is None:
        return examples
    shard = examples[input_context.input_pipeline_id::input_context.num_input_pipelines]
    if not shard:
        raise ValueError(
            f"source {source.name!r} split {split!r} has {len(examples)} examples, too few for "
            f"{input_context.num_input_pipelines} input pipelines "
            f"(pipeline {input_context.input_pipeline_id} gets none)")
    return shard


def _problem(audio):
    """Why decoded audio cannot be used, or None."""
    if audio.size == 0:
        return "no samples"
    if not np.isfinite(audio).all():
        return "NaN or infinite samples"
    return None


def _decode(source, examples):
    """Decode every example once, in parallel: a list of float32 arrays (empty when bad)."""
    def load(index):
        example = examples[index]
        try:
            audio = np.asarray(source.load(example), np.float32).reshape(-1)
        except AudioError as error:
            _record_skip(source, example.key, str(error))
            return np.zeros(0, np.float32)
        reason = _problem(audio)
        if reason:
            _record_skip(source, example.key, reason)
            return np.zeros(0, np.float32)
        return audio

    loaded = tf.data.Dataset.range(len(examples)).with_options(pipeline_options()).map(
        lambda i: tf.numpy_function(load, [i], tf.float32),
        num_parallel_calls=AUTOTUNE, deterministic=True)
    return list(loaded.as_numpy_iterator())


def _load_store(source, split, input_context):
    """Decode this pipeline's files of ``split`` into a ``_Store``; ``UnusableSplit`` if all
    are bad."""
    examples = _split_examples(source, split, input_context)
    decoded = _decode(source, examples)
    kept = [(example, audio) for example, audio in zip(examples, decoded) if audio.size]
    if not kept:
        bad = dict(dataset_skipped(source))
        listed = "; ".join(f"{e.key}: {bad.get(e.key, '?')}" for e in examples[:_MAX_LISTED])
        more = f" (and {len(examples) - _MAX_LISTED} more)" if len(examples) > _MAX_LISTED else ""
        raise UnusableSplit(f"every file of source {source.name!r} split {split!r} is bad: "
                            f"{listed}{more}")
    lengths = np.array([audio.size for _, audio in kept], np.int64)
    return _Store(audio=np.concatenate([audio for _, audio in kept]),
                  starts=np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64),
                  lengths=lengths,
                  labels=np.array([max(example.label, 0) for example, _ in kept], np.int32),
                  keys=tuple(example.key for example, _ in kept))


def pipeline_options():
    """Options of every pipeline: deterministic order, and tf.data's autotuning model off.

    With the autotuner on, deleting an iterator (the end of every ``fit`` and ``evaluate``)
    waits for the autotuner's next wake-up, whose period doubles from 10 ms to 60 s: measured
    here, a one-step ``fit`` of the peers' SampleRNN returned 6-9 s after its last batch, always
    at 20.5 s after it started (10 + 20 + ... + 10,240 ms). Without it ``AUTOTUNE`` takes
    tf.data's static choices (parallel maps on every core, a self-sizing prefetch buffer),
    enough for these in-memory pipelines.
    """
    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    return options


def _finish(dataset):
    return dataset.with_options(pipeline_options()).prefetch(AUTOTUNE)


# --------------------------------------------------------------------------- TBPTT

def _pieces(lengths, piece):
    """Cut spans of ``lengths`` into consecutive pieces of ``piece`` samples (the last of each
    span shorter): int64 arrays ``(span, first sample)``, one row per piece, in order."""
    counts = -(-lengths // piece)
    span = np.repeat(np.arange(len(counts)), counts)
    index_in_span = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return span, index_in_span * piece


def _cut_examples(store, example_samples):
    """Cut each file into consecutive examples of ``example_samples`` (the last one shorter):
    dict of arrays ``offset`` (into the store), ``length``, ``label``, one row per example."""
    file, position = _pieces(store.lengths, example_samples)
    return {"offset": store.starts[file] + position,
            "length": np.minimum(example_samples, store.lengths[file] - position),
            "label": store.labels[file]}


def _shuffled_stream(num_examples, seed):
    """Stream position -> example: epoch ``p // N`` is a permutation of the N examples, keyed
    statelessly on ``seed`` and the epoch."""
    def example_at(positions):
        epochs = positions // num_examples
        seeds = tf.stack([tf.fill(tf.shape(epochs), tf.constant(seed, tf.int64)), epochs,
                          tf.zeros_like(epochs)], axis=1)
        return tf.raw_ops.RandomIndexShuffle(index=positions % num_examples, seed=seeds,
                                             max_index=tf.constant(num_examples - 1, tf.int64))
    return example_at


def _ordered_stream(num_examples):
    """Stream position -> example: each example once, in order, then -1 (none)."""
    def example_at(positions):
        return tf.where(positions < num_examples, positions, tf.constant(-1, tf.int64))
    return example_at


def _lane_schedule(counts, batch, example_at):
    """Endless dataset of ``(example, index)``, int64 (B,) each: at every step lane b shows
    subsequence ``index[b]`` of example ``example[b]`` (-1: none, an all-masked filler). A lane
    that finishes its example takes the next one of the stream (lanes in order), so lanes run
    through examples of different lengths independently."""
    counts = tf.constant(counts, tf.int64)

    def step(state, _):
        position, example, remaining = state
        need = remaining == 0
        taken = tf.cast(need, tf.int64)
        fresh = example_at(position + tf.cumsum(taken, exclusive=True))
        example = tf.where(need, fresh, example)
        total = tf.where(example >= 0, tf.gather(counts, tf.maximum(example, 0)), 1)
        remaining = tf.where(need, total, remaining)
        state = (position + tf.reduce_sum(taken), example, remaining - 1)
        return state, (example, total - remaining)

    start = (tf.constant(0, tf.int64), tf.fill([batch], tf.constant(-1, tf.int64)),
             tf.zeros([batch], tf.int64))
    return tf.data.Dataset.counter().scan(start, step)


def _subsequence_batch(table, store, seq_len, overlap, q_levels, quantization, with_labels):
    """``(example, index)`` of a step -> the batch dict of those subsequences."""
    table = {key: tf.constant(value) for key, value in table.items()}

    def make(example, index):
        real = example >= 0
        row = tf.maximum(example, 0)
        length = tf.where(real, tf.gather(table["length"], row), 0)
        audio = store.read(tf.gather(table["offset"], row), length,
                           index * seq_len - overlap, overlap + seq_len)
        positions = index[:, None] * seq_len + tf.range(seq_len, dtype=tf.int64)
        elements = {"samples": quant.encode_tf(audio, q_levels, quantization),
                    "mask": tf.cast(positions < length[:, None], tf.float32),
                    "reset": index == 0}
        if with_labels:
            elements["label"] = tf.where(real, tf.gather(table["label"], row), 0)
        return elements
    return make


def tbptt_dataset(source, split, *, batch_size, seq_len, overlap, example_seconds, q_levels,
                  quantization, seed=0, repeat=True, with_labels=False, input_context=None):
    """Truncated-BPTT streams for SampleRNN.

    Each file is cut into consecutive examples of ``example_seconds`` (the last, shorter one
    kept; a file shorter than that is one example). An example is split into subsequences of
    ``seq_len`` targets, the last padded at the end (mask 0). Row b of consecutive batches
    (lane b) walks through its examples one subsequence at a time, so a model keeping RNN state
    per row sees each example in order in one row, and ``reset`` marks where that row's
    example starts. A lane that finishes its example takes the next example of a stream (lanes
    in order), so rows reset at different times when examples differ in length.

    With ``repeat=True`` the stream is endless: epoch after epoch, each a permutation of all
    examples keyed statelessly on ``seed`` and the epoch. With ``repeat=False`` (evaluation) the
    stream is every example once, in order; lanes that run out show all-masked subsequences
    (mask 0, reset True, silence codes, label 0) until the last example ends, so no example is
    dropped and every batch is full.

    Args:
      source: a ``samplenet.data`` source; split: "train", "valid", "test" or "all".
      batch_size: global batch, one lane per row. With ``input_context`` each element holds
        ``get_per_replica_batch_size(batch_size)`` rows; a pipeline feeding R replicas runs R
        times as many lanes and yields each step as R consecutive elements, one per replica,
        so every replica sees its own lanes continue from one of its batches to the next.
      seq_len: targets per subsequence; overlap: samples of context before them.
      example_seconds: length of one example in seconds.
      q_levels, quantization: see ``samplenet.quantization``.
      with_labels: also yield each example's class ``label``.
      input_context: a ``tf.distribute.InputContext`` (shards the files), or None.

    Returns:
      A dataset of dicts: ``samples`` int32 (B, overlap + seq_len) codes (the first ``overlap``
      are the samples before the subsequence in its example, silence codes at its start),
      ``mask`` float32 (B, seq_len) 1 on real targets, ``reset`` bool (B,) True on an example's
      first subsequence, and with ``with_labels`` ``label`` int32 (B,).
    """
    batch = _pipeline_batch_size(batch_size, input_context)
    check_int("seq_len", seq_len, 1)
    check_int("overlap", overlap, 0)
    check_seconds("example_seconds", example_seconds)
    quant.check_quantization(q_levels, quantization)
    _check_labels(source, with_labels)
    example_samples = max(1, round(example_seconds * source.sample_rate))

    store = _load_store(source, split, input_context)
    table = _cut_examples(store, example_samples)
    num_examples = len(table["length"])
    if repeat:
        example_at = _shuffled_stream(num_examples, seed)
    else:
        example_at = _ordered_stream(num_examples)
    replicas = _replicas_per_pipeline(input_context)
    schedule = _lane_schedule(-(-table["length"] // seq_len), batch * replicas, example_at)
    if not repeat:
        schedule = schedule.take_while(lambda example, _: tf.reduce_any(example >= 0))
    make = _subsequence_batch(table, store, seq_len, overlap, q_levels, quantization,
                              with_labels)
    dataset = schedule.map(make, num_parallel_calls=AUTOTUNE, deterministic=True)
    if replicas > 1:
        # tf.distribute hands a pipeline's consecutive elements to its replicas in turn: each
        # step is cut into one batch per replica, so replica r keeps lanes [r*B, (r+1)*B).
        dataset = dataset.rebatch(batch, drop_remainder=True)
    return _finish(dataset)


# --------------------------------------------------------------------------- windows, segments

def _random_windows(store, size, seed, pad_left):
    """Endless dataset of ``(file, start)``: a window of ``size`` samples drawn uniformly over
    all window positions of all files (stateless, keyed on ``seed`` and the element index).

    A file of n >= size samples has n - size + 1 positions; a shorter one has one, the window
    holding the whole file with zeros before it (``pad_left``) or after it; such files are
    named in a warning."""
    short = [key for key, length in zip(store.keys, store.lengths) if length < size]
    if short:
        more = f" (and {len(short) - _MAX_LISTED} more)" if len(short) > _MAX_LISTED else ""
        _logger.warning("%d file(s) shorter than one training window (%d samples) are padded "
                        "with silence, masked out of the loss: %s%s", len(short), size,
                        ", ".join(short[:_MAX_LISTED]), more)
    positions = np.maximum(store.lengths - size + 1, 1)
    ends = tf.constant(np.cumsum(positions))
    firsts = tf.constant(np.cumsum(positions) - positions)
    total = int(positions.sum())
    lengths = tf.constant(store.lengths)
    seed = tf.constant(seed, tf.int64)

    def draw(index):
        point = tf.random.stateless_uniform([1], seed=tf.stack([seed, index]), minval=0,
                                            maxval=total, dtype=tf.int64)
        file = tf.searchsorted(ends, point, side="right", out_type=tf.int64)[0]
        length = tf.gather(lengths, file)
        short_start = length - size if pad_left else tf.constant(0, tf.int64)
        return file, tf.where(length >= size, point[0] - tf.gather(firsts, file), short_start)

    return tf.data.Dataset.counter().map(draw, num_parallel_calls=AUTOTUNE, deterministic=True)


def _tiled_windows(store, tile, context):
    """Finite dataset of ``(file, start)``: windows whose last ``tile`` samples tile every file
    (consecutive, non-overlapping, the last running past the end) after ``context`` samples."""
    file, position = _pieces(store.lengths, tile)
    return tf.data.Dataset.from_tensor_slices((file, position - context))


def _check_local_condition(local_condition, window_samples):
    """ValueError unless ``local_condition`` is a valid log-mel dict whose hop divides
    ``window_samples``."""
    if not isinstance(local_condition, dict) or set(local_condition) != _LOCAL_CONDITION_KEYS:
        raise ValueError(f"local_condition must be None or a dict with keys "
                         f"{sorted(_LOCAL_CONDITION_KEYS)}, got {local_condition!r}")
    if local_condition["kind"] not in LOCAL_CONDITION_KINDS:
        raise ValueError(f"local_condition kind must be one of {sorted(LOCAL_CONDITION_KINDS)}, "
                         f"got {local_condition['kind']!r}")
    hop = local_condition["hop"]
    check_int("local_condition hop", hop, 1)
    check_int("local_condition num_mels", local_condition["num_mels"], 1)
    check_int("local_condition frame_length", local_condition["frame_length"], hop)
    if window_samples % hop:
        raise ValueError(f"context + target_len ({window_samples}) must be a multiple of the "
                         f"local_condition hop, got hop={hop!r}")


def feature_padding(local_condition):
    """``(left, right)`` samples of audio needed around a span to compute its log-mel frames:
    frame i of a span covers span samples ``[i*hop - left, (i+1)*hop + right)``, centred on
    ``[i*hop, (i+1)*hop)``."""
    excess = local_condition["frame_length"] - local_condition["hop"]
    return excess // 2, excess - excess // 2


def local_features(padded_audio, sample_rate, local_condition):
    """Log-mel frames of audio padded by ``feature_padding``: float32 (B, T // hop, num_mels)
    for padded_audio (B, left + T + right); frame i is centred on samples [i*hop, (i+1)*hop)
    of the unpadded span."""
    return spectral.log_mel(padded_audio, sample_rate, local_condition["frame_length"],
                            local_condition["hop"], local_condition["num_mels"])


def windows_dataset(source, split, *, batch_size, context, target_len, q_levels, quantization,
                    seed=0, repeat=True, with_labels=False, local_condition=None,
                    input_context=None):
    """Windows of ``context + target_len`` samples for WaveNet-like models.

    With ``repeat=True`` windows are drawn uniformly over all window positions of all files, so
    a file is chosen in proportion to its number of positions (about its length); a file shorter
    than the window counts as one position and is left-padded with silence. Draws are stateless,
    keyed on ``seed`` and the window index. With ``repeat=False`` (evaluation) the targets tile
    every file once (consecutive, non-overlapping), each window preceded by the file's own
    ``context`` samples (silence before the file start); the last window of a file runs past
    its end (mask 0 there) and the last batch may be smaller.

    Args:
      context: samples before the targets (WaveNet passes its receptive field, so the first
        target is predicted from real samples only).
      target_len: target samples per window.
      local_condition: None or ``{"kind": "log-mel", "hop": H, "num_mels": M,
        "frame_length": W}``: also yield log-mel ``features`` computed from the audio itself.
        Frame i is centred on window samples ``[i*H, (i+1)*H)``: it covers
        ``[i*H - (W-H)//2, (i+1)*H + W-H - (W-H)//2)``, taken from the file's real neighbouring
        audio around the window, and zeros beyond the file's ends (zero padding, no
        reflection). ``(context + target_len) % H`` must be 0.
      Other arguments as for ``tbptt_dataset``.

    Returns:
      A dataset of dicts: ``samples`` int32 (B, context + target_len) codes of ``audio``,
      ``audio`` float32 (B, context + target_len) (0.0 in padding), ``mask`` float32
      (B, target_len) 1 where the target is real audio, with ``with_labels`` ``label`` int32
      (B,), with ``local_condition`` ``features`` float32 (B, (context + target_len) // H, M).
    """
    batch = _pipeline_batch_size(batch_size, input_context)
    check_int("context", context, 0)
    check_int("target_len", target_len, 1)
    quant.check_quantization(q_levels, quantization)
    _check_labels(source, with_labels)
    size = context + target_len
    left, right = 0, 0
    if local_condition is not None:
        _check_local_condition(local_condition, size)
        left, right = feature_padding(local_condition)

    store = _load_store(source, split, input_context)
    if repeat:
        starts = _random_windows(store, size, seed, pad_left=True)
    else:
        starts = _tiled_windows(store, target_len, context)

    def make(file, start):
        length = tf.gather(store.lengths, file)
        padded = store.read(tf.gather(store.starts, file), length, start - left,
                            left + size + right)
        audio = padded[:, left:left + size]
        target = start[:, None] + context + tf.range(target_len, dtype=tf.int64)
        real = (target >= 0) & (target < length[:, None])
        elements = {"samples": quant.encode_tf(audio, q_levels, quantization), "audio": audio,
                    "mask": tf.cast(real, tf.float32)}
        if with_labels:
            elements["label"] = tf.gather(store.labels, file)
        if local_condition is not None:
            elements["features"] = local_features(padded, source.sample_rate, local_condition)
        return elements

    batches = starts.batch(batch, drop_remainder=repeat)
    return _finish(batches.map(make, num_parallel_calls=AUTOTUNE, deterministic=True))


def segments_dataset(source, split, *, batch_size, segment_samples, seed=0, repeat=True,
                     input_context=None):
    """Fixed-length segments of audio for the codec.

    With ``repeat=True`` segments are drawn uniformly over all segment positions of all files
    (as ``windows_dataset``); a file shorter than a segment is zero-padded at the end. With
    ``repeat=False`` consecutive non-overlapping segments cover every file (the last zero-padded
    at the end; the last batch may be smaller).

    Returns:
      A dataset of dicts ``{"audio": float32 (B, segment_samples)}``.
    """
    batch = _pipeline_batch_size(batch_size, input_context)
    check_int("segment_samples", segment_samples, 1)
    store = _load_store(source, split, input_context)
    if repeat:
        starts = _random_windows(store, segment_samples, seed, pad_left=False)
    else:
        starts = _tiled_windows(store, segment_samples, 0)

    def make(file, start):
        return {"audio": store.read(tf.gather(store.starts, file), tf.gather(store.lengths, file),
                                    start, segment_samples)}

    batches = starts.batch(batch, drop_remainder=repeat)
    return _finish(batches.map(make, num_parallel_calls=AUTOTUNE, deterministic=True))


# --------------------------------------------------------------------------- dispatch

def _resolve_local_condition(section_value, model_value):
    """The data section's ``local_condition`` ("" or "log-mel", or a full dict) against the
    model's: "" defers to the model; "log-mel" requires the model to ask for log-mel features."""
    if isinstance(section_value, dict):
        return section_value
    if section_value in ("", None):
        return model_value
    if section_value not in LOCAL_CONDITION_KINDS:
        raise ValueError(f"data.local_condition must be '' or one of "
                         f"{sorted(LOCAL_CONDITION_KINDS)}, got {section_value!r}")
    if not isinstance(model_value, dict) or model_value.get("kind") != section_value:
        raise ValueError(f"data.local_condition={section_value!r} but the model takes no "
                         f"{section_value} features (its local_condition: {model_value!r})")
    return model_value


def _section_options(kind, section, model_options, sample_rate):
    """The pipeline keyword arguments that the data section sets for ``kind``."""
    if kind == "tbptt":
        return {key: section[key] for key in ("example_seconds",) if key in section}
    if kind == "windows":
        condition = _resolve_local_condition(section.get("local_condition", ""),
                                             model_options.get("local_condition"))
        options = {"local_condition": condition}
        if check_int("data.window_samples", section.get("window_samples", 0), 0):
            options["target_len"] = section["window_samples"]
            if condition is not None:  # round the window up to whole conditioning frames
                hop, context = condition["hop"], model_options.get("context", 0)
                options["target_len"] = -(-(context + options["target_len"]) // hop) * hop - context
        return options
    if "segment_seconds" in section:
        check_seconds("segment_seconds", section["segment_seconds"])
        return {"segment_samples": max(1, round(section["segment_seconds"] * sample_rate))}
    return {}


_PIPELINES = {"tbptt": tbptt_dataset, "windows": windows_dataset, "segments": segments_dataset}


def training_dataset(model, source, split="train", *, batch_size, seed=0, repeat=True,
                     input_context=None, **data_section):
    """The pipeline a model trains on, chosen by ``model.data_kind``.

    Keyword arguments of the pipeline come from ``model.data_options()`` (e.g. ``seq_len``,
    ``overlap``, ``q_levels``, ``quantization``, ``with_labels`` for "tbptt"; ``context``,
    ``target_len``, ``q_levels``, ``quantization``, ``with_labels``, ``local_condition`` for
    "windows"; ``segment_samples`` for "segments"), overridden by the keys of the config's data
    section (``data_section``, keys of ``schema.DATA_DEFAULTS``) that concern that pipeline:

    - "tbptt": ``example_seconds`` -> ``example_seconds``.
    - "windows": ``local_condition``: "" keeps the model's, "log-mel" requires the model's to
      be a log-mel dict (else ValueError), a dict replaces it; ``window_samples`` ->
      ``target_len`` when > 0 (0 keeps the model's), rounded up so that ``context + target_len``
      is a whole number of conditioning hops when locally conditioned.
    - "segments": ``segment_seconds`` -> ``segment_samples = round(segment_seconds *
      source.sample_rate)``.

    ``spec``, ``valid_fraction`` and ``test_fraction`` (used to build the source) and the keys of
    the other pipelines are ignored; keys unknown to the data section raise ValueError.
    """
    kind, options = _pipeline_options(model, data_section, source.sample_rate)
    return _PIPELINES[kind](source, split, batch_size=batch_size, seed=seed, repeat=repeat,
                            input_context=input_context, **options)


def _pipeline_options(model, data_section, sample_rate):
    """``(kind, keyword arguments)`` of ``model``'s pipeline with the data section's overrides
    (see ``training_dataset``); ValueError for unknown data keys or an unknown data kind."""
    unknown = sorted(set(data_section) - set(schema.DATA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown data keys {unknown}; known: {sorted(schema.DATA_DEFAULTS)}")
    kind = model.data_kind
    if kind not in _PIPELINES:
        raise ValueError(f"model.data_kind must be one of {sorted(_PIPELINES)}, got {kind!r}")
    model_options = dict(model.data_options())
    return kind, {**model_options,
                  **_section_options(kind, data_section, model_options, sample_rate)}


def example_seconds(model, sample_rate, **data_section):
    """Seconds of audio in one training example of ``model``'s pipeline at ``sample_rate`` Hz,
    with the data section's overrides as ``training_dataset`` applies them: a TBPTT example
    (``example_seconds``), a window with its context (``context + target_len`` samples) or a
    codec segment (``segment_samples``)."""
    kind, options = _pipeline_options(model, data_section, sample_rate)
    if kind == "tbptt":
        return float(options["example_seconds"])
    if kind == "windows":
        return (options["context"] + options["target_len"]) / sample_rate
    return options["segment_samples"] / sample_rate
