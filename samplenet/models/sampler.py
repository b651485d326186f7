"""The shared sampler of autoregressive families: argument checks, priming, the compiled loop,
chunking, seeds, temperature and streaming, written once.

A family (``samplenet.models.base.Autoregressive``) supplies the model-specific part:

- ``start_generation(batch_size, prime, labels, **options)`` -> ``Start``: the loop state after
  the prime (or from silence), the loop's constant inputs and, optionally, a function giving
  each chunk's inputs (WaveNet's local conditioning);
- ``loop_context(context)``: what the traced loop computes once from those inputs (SampleRNN's
  level table, class vectors);
- ``predict_next(state, context, chunk_inputs, step, index)`` -> ``(prediction, state)``;
- ``draw(prediction, temperature, seed)`` -> the next value (default: a categorical sample of
  logits);
- ``append(state, value)`` -> the state with the new value as the latest input.

A seed is the ``(2,)`` int32 pair of ``samplenet.ops.sampling``; the value at ``index``
(samples since the start of generation) is drawn with ``step_seed(seed, index)``, so the output
for a seed does not depend on how generation is cut into chunks.
"""
import functools
from typing import Any, Callable, NamedTuple, Optional

import tensorflow as tf

from samplenet.ops import sampling
from samplenet.validation import check_positive_int


class Start(NamedTuple):
    """Where a family's generation starts.

    state: nested tensors carried from step to step (and from chunk to chunk).
    context: nested tensors (or None) constant over the run, passed to ``loop_context``.
    chunk_inputs: None, or ``f(first_index, count)`` -> nested tensors for the steps
      ``[first_index, first_index + count)`` of one chunk (e.g. ``(batch, count, channels)``).
    """

    state: Any
    context: Any = None
    chunk_inputs: Optional[Callable[[int, int], Any]] = None


def compile_loop(model):
    """``model``'s loop as a ``tf.function`` (XLA-compiled where ``model.generation_jit``); the
    model keeps it (``Autoregressive.generation_loop``), so it is traced once per shape."""
    return tf.function(functools.partial(_run, model), jit_compile=model.generation_jit,
                       reduce_retracing=True)


def _batch_major(stacked):
    """``(time, batch, ...)`` -> ``(batch, time, ...)``."""
    return tf.transpose(stacked, [1, 0] + list(range(2, stacked.shape.rank)))


def _run(model, state, context, chunk_inputs, temperature, seed, first_index, num_steps,
         forced, keep_predictions):
    """``num_steps`` steps from ``state``. ``forced`` None samples each value; else int32 /
    float ``(batch, num_steps)`` values are fed instead (teacher forcing). Returns ``(values
    (batch, num_steps), predictions (batch, num_steps, ...) float32 or None, state)``."""
    with model.generation_scope():
        context = model.loop_context(context)
        values = tf.TensorArray(model.value_dtype, size=num_steps)
        predictions = tf.TensorArray(tf.float32, size=num_steps) if keep_predictions else ()

        def body(step, state, values, predictions):
            index = first_index + step
            prediction, state = model.predict_next(state, context, chunk_inputs, step, index)
            if forced is None:
                value = model.draw(prediction, temperature, sampling.step_seed(seed, index))
            else:
                value = forced[:, step]
            if keep_predictions:
                predictions = predictions.write(step, tf.cast(prediction, tf.float32))
            return step + 1, model.append(state, value), values.write(step, value), predictions

        _, state, values, predictions = tf.while_loop(
            lambda step, *_: step < num_steps, body,
            (tf.constant(0), state, values, predictions))
        return (_batch_major(values.stack()),
                _batch_major(predictions.stack()) if keep_predictions else None, state)


def chunk_length(model, chunk_samples):
    """``chunk_samples`` rounded up to the family's ``chunk_granularity``."""
    granularity = model.chunk_granularity
    return max(granularity, -(-int(chunk_samples) // granularity) * granularity)


def generate_chunks(model, num_samples, batch_size=1, temperature=1.0, seed=None, prime=None,
                    condition=None, chunk_samples=16000, **options):
    """Yield ``(codes int32, audio float32)`` NumPy chunks ``(batch, <= chunk)`` until
    ``num_samples`` samples per sequence are produced, one compiled loop per chunk.

    Args:
      model: a built or buildable ``Autoregressive`` model.
      num_samples, batch_size, chunk_samples: positive ints (``chunk_samples`` is rounded up
        to the family's ``chunk_granularity``).
      temperature: > 0, a scalar or one per sequence.
      seed: an int for reproducible output, None for fresh entropy.
      prime: audio in [-1, 1], ``(time,)``, ``(1, time)`` or ``(batch, time)``, that the
        generated audio continues (not part of the output); None starts from silence.
      condition: class ids ``(batch,)`` or one for all; required iff ``model.num_classes``.
      **options: family options (WaveNet's ``local_condition``).
    Raises ``ValueError`` naming the bad argument, before anything is generated.
    """
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size),
                        ("chunk_samples", chunk_samples)):
        check_positive_int(name, value)
    temperature = tf.constant(sampling.check_temperature(temperature, batch_size))
    labels = sampling.check_condition(condition, batch_size, model.num_classes)
    prime = sampling.check_prime(prime, batch_size)
    model.ensure_built()
    start = model.start_generation(batch_size, prime, labels, num_samples=num_samples,
                                   **options)
    return _chunks(model, start, num_samples, temperature, tf.constant(sampling.make_seed(seed)),
                   chunk_length(model, chunk_samples))


def _chunks(model, start, num_samples, temperature, seed, chunk):
    state, loop, produced = start.state, model.generation_loop(), 0
    while produced < num_samples:
        count = min(chunk, num_samples - produced)
        inputs = start.chunk_inputs(produced, count) if start.chunk_inputs else None
        values, _, state = loop(state, start.context, inputs, temperature, seed,
                                tf.constant(produced), count, None, False)
        produced += count
        yield model.codes_and_audio(values.numpy())


def teacher_forced(model, start, values):
    """The predictions (float32 ``(batch, steps, ...)``, e.g. logits) the generation loop
    makes from ``start`` when fed ``values`` ``(batch, steps)`` instead of its own samples:
    the property that ties generation to training is that these equal ``model.call``'s."""
    values = tf.convert_to_tensor(values, model.value_dtype)
    batch, steps = int(values.shape[0]), int(values.shape[1])
    inputs = start.chunk_inputs(0, steps) if start.chunk_inputs else None
    _, predictions, _ = model.generation_loop()(start.state, start.context, inputs,
                                                tf.ones([batch]), tf.zeros([2], tf.int32),
                                                tf.constant(0), steps, values, True)
    return predictions


def generate_in_graph(model, num_samples, batch_size, temperature, seed, labels):
    """Values ``(batch_size, num_samples)`` from silence, traceable with tensor arguments (the
    exported ``generate`` signature): ``num_samples``/``batch_size`` int32 scalars,
    ``temperature`` float32 ``(batch_size,)``, ``seed`` the int32 ``(2,)`` pair, ``labels``
    int32 ``(batch_size,)`` or None. Equal to ``generate_chunks``'s output for the same
    arguments. Not for models that ``needs_step_inputs``."""
    start = model.start_generation(batch_size, None, labels, num_samples=num_samples)
    values, _, _ = model.generation_loop()(start.state, start.context, None, temperature,
                                           seed, tf.constant(0), num_samples, None, False)
    return values

