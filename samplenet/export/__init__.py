"""Export a trained model as a TensorFlow SavedModel for serving:
``python -m samplenet.export --ckpt runs/<run> --out exported/``.

The SavedModel needs neither samplenet nor Keras to run: ``tf.saved_model.load(DIR)`` in a
plain TensorFlow process gives its ``signatures``. ``DIR/samplenet.json`` (the manifest) says
what the model is and the units of its inputs and outputs.

Autoregressive models (SampleRNN, WaveNet, the linear AR model) get one signature,
``generate``:

- inputs: ``num_samples`` int32 scalar (> 0), ``batch_size`` int32 scalar (> 0),
  ``temperature`` float32 scalar (> 0), ``seed`` int64 scalar (any value: the same seed as
  ``model.generate(..., seed=seed)``), and for class-conditioned models ``condition`` int32
  ``(batch_size,)`` or ``(1,)`` class ids in ``[0, num_classes)``;
- outputs: ``audio`` float32 ``(batch_size, num_samples)`` in [-1, 1] at ``sample_rate`` and
  ``codes`` int32 ``(batch_size, num_samples)`` quantized levels in ``[0, q_levels)``.

It runs the model's own compiled generation loop (without a prime, from silence) over all
``num_samples`` at once, so its output equals the library's ``model.generate`` for the same
arguments (same levels; audio equal to float rounding). Compiled (XLA) loops are compiled once
per distinct ``(num_samples, batch_size)``.

The codec (SoundStream) gets two signatures: ``encode`` (``audio`` float32 ``(batch, time)``,
``num_quantizers`` int32 scalar in ``[1, N]``) -> ``codes`` int32 ``(batch, num_quantizers,
ceil(time / hop))``, and ``decode`` (``codes`` int32 ``(batch, n, frames)``, any ``n`` in
``[1, N]``) -> ``audio`` float32 ``(batch, frames * hop)``, equal to ``model.encode`` /
``model.decode``.

Invalid inputs (a non-positive length, a class id out of range, ...) raise
``InvalidArgumentError`` from the signature.
"""
import json
import os
import secrets
import shutil
from pathlib import Path

import tensorflow as tf

from samplenet import quantization as quant
from samplenet.models import sampler
from samplenet.ops.sampling import seed_from_int64

MANIFEST = "samplenet.json"
FORMAT_VERSION = 1
_SCALAR = tf.TensorShape([])


def _as_tf_variable(variable):
    """The ``tf.Variable`` behind a Keras variable (a SavedModel tracks TensorFlow objects)."""
    return variable if isinstance(variable, tf.Variable) else variable.value


class _Servable(tf.Module):
    """What the SavedModel holds: the model's variables and its serving functions."""

    def __init__(self, model):
        super().__init__(name="samplenet_" + str(model.family))
        self.model_variables = [_as_tf_variable(v) for v in model.variables]


# ------------------------------------------------------------------ autoregressive models
def _checked_generation_inputs(model, num_samples, batch_size, temperature, condition):
    """In-graph checks of the ``generate`` inputs (``InvalidArgumentError`` when violated);
    returns ``(temperatures (batch,), condition (batch,) or None)``, which depend on them."""
    checks = [
        tf.debugging.assert_positive(num_samples, message="num_samples must be > 0"),
        tf.debugging.assert_positive(batch_size, message="batch_size must be > 0"),
        tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
        tf.debugging.assert_all_finite(temperature, "temperature must be finite")]
    if condition is not None:
        checks += [
            tf.debugging.assert_non_negative(condition, message="condition ids must be >= 0"),
            tf.debugging.assert_less(condition, tf.constant(model.num_classes, tf.int32),
                                     message=f"condition ids must be < {model.num_classes}")]
    with tf.control_dependencies(checks):
        temperature = tf.fill([batch_size], temperature)
        if condition is not None:
            condition = tf.broadcast_to(condition, [batch_size])
    return temperature, condition


def _generate_function(model):
    """The ``generate`` tf.function of an autoregressive ``model``, with its input signature:
    the shared sampler's loop (``sampler.generate_in_graph``) from silence."""
    if model.needs_step_inputs:
        raise ValueError(f"export: this {model.family!r} model needs per-step inputs (local "
                         f"conditioning) that the generate signature does not take")
    q_levels, quantization = model.q_levels, model.quantization
    signature = [tf.TensorSpec(_SCALAR, tf.int32, name="num_samples"),
                 tf.TensorSpec(_SCALAR, tf.int32, name="batch_size"),
                 tf.TensorSpec(_SCALAR, tf.float32, name="temperature"),
                 tf.TensorSpec(_SCALAR, tf.int64, name="seed")]
    if model.num_classes:
        signature.append(tf.TensorSpec([None], tf.int32, name="condition"))

    def generate(num_samples, batch_size, temperature, seed, condition=None):
        temperatures, condition = _checked_generation_inputs(model, num_samples, batch_size,
                                                             temperature, condition)
        values = sampler.generate_in_graph(model, num_samples, batch_size, temperatures,
                                           seed_from_int64(seed), condition)
        if values.dtype == tf.int32:
            codes, audio = values, quant.decode_tf(values, q_levels, quantization)
        else:
            codes, audio = quant.encode_tf(values, q_levels, quantization), values
        return {"audio": tf.ensure_shape(audio, [None, None]),
                "codes": tf.ensure_shape(codes, [None, None])}

    return tf.function(generate, input_signature=signature)


# --------------------------------------------------------------------------------- codec
def _codec_functions(model):
    """``{"encode": tf.function, "decode": tf.function}`` of a codec ``model``."""
    total = model.num_quantizers

    def encode(audio, num_quantizers):
        check = tf.debugging.assert_equal(
            tf.logical_and(num_quantizers >= 1, num_quantizers <= total), True,
            message=f"num_quantizers must be in [1, {total}]")
        with tf.control_dependencies([check]):
            # Residual quantization: the first n codebooks' codes do not depend on the others.
            codes = model.encode(audio)[:, :num_quantizers]
        return {"codes": codes}

    def decode(codes):
        count = tf.shape(codes)[1]
        check = tf.debugging.assert_equal(
            tf.logical_and(count >= 1, count <= total), True,
            message=f"codes must have 1 to {total} codebooks (axis 1)")
        with tf.control_dependencies([check]):
            index = tf.clip_by_value(count - 1, 0, total - 1)

        def branch(n):
            return lambda: model.decode(tf.ensure_shape(codes, [None, n, None]))

        audio = tf.switch_case(index, [branch(n) for n in range(1, total + 1)])
        return {"audio": tf.ensure_shape(audio, [None, None])}

    return {
        "encode": tf.function(encode, input_signature=[
            tf.TensorSpec([None, None], tf.float32, name="audio"),
            tf.TensorSpec(_SCALAR, tf.int32, name="num_quantizers")]),
        "decode": tf.function(decode, input_signature=[
            tf.TensorSpec([None, None, None], tf.int32, name="codes")])}


# ------------------------------------------------------------------------------ manifest
def _describe(concrete):
    """``{"inputs": {name: {dtype, shape}}, "outputs": {...}}`` of a concrete function."""
    def spec(tensor_spec):
        return {"dtype": tensor_spec.dtype.name,
                "shape": [None if d is None else int(d) for d in tensor_spec.shape.as_list()]}
    inputs = {s.name: spec(s) for s in concrete.structured_input_signature[0] if s is not None}
    outputs = {name: spec(tf.TensorSpec.from_tensor(t))
               for name, t in concrete.structured_outputs.items()}
    return {"inputs": inputs, "outputs": outputs}


def _manifest(model, concretes):
    manifest = {"format": "samplenet-savedmodel", "format_version": FORMAT_VERSION,
                "family": model.family, "sample_rate": int(model.sample_rate),
                "signatures": {name: _describe(c) for name, c in sorted(concretes.items())}}
    if model.kind == "codec":
        manifest.update(kind="codec", hop_samples=int(model.hop),
                        frame_rate=float(model.frame_rate),
                        num_quantizers=int(model.num_quantizers),
                        codebook_size=int(model.codebook_size),
                        bitrate_kbps=float(model.bitrate_kbps()))
    else:
        manifest.update(kind="autoregressive", q_levels=int(model.q_levels),
                        quantization=model.quantization,
                        num_classes=int(model.num_classes),
                        seed="int64; the same value as model.generate(seed=...) gives the "
                             "same samples")
    return manifest


# -------------------------------------------------------------------------------- export
def check_out_dir(out_dir):
    """``ValueError`` unless ``out_dir`` is free for an export: absent or an empty folder."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ValueError(f"export: the output folder {str(out_dir)!r} already exists and is "
                         "not an empty folder; choose a new path")


def export(model, out_dir):
    """Write ``model`` (built, with its trained weights) as a SavedModel to ``out_dir``.

    ``out_dir`` must not exist or be an empty folder. Everything is written into a temporary
    sibling folder that is renamed to ``out_dir`` when complete, so a failed export leaves
    nothing behind. Returns ``out_dir`` as a ``Path``; raises ``ValueError`` for a model that
    cannot be exported or an occupied ``out_dir``, ``OSError`` when it cannot be written.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    model.ensure_built()
    if model.kind == "codec":
        functions = _codec_functions(model)
    else:
        functions = {"generate": _generate_function(model)}
    servable = _Servable(model)
    for name, function in functions.items():
        setattr(servable, name, function)
    concretes = {name: f.get_concrete_function() for name, f in functions.items()}
    manifest = _manifest(model, concretes)

    temporary = out_dir.parent / f".{out_dir.name}.{secrets.token_hex(4)}.partial"
    try:
        temporary.mkdir(parents=True)
    except OSError as error:
        raise OSError(f"export: cannot write {str(out_dir)!r}: "
                      f"{error.strerror or error}") from None
    try:
        tf.saved_model.save(servable, str(temporary), signatures=concretes)
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n",
                                          encoding="utf-8")
        check_out_dir(out_dir)  # nobody took the path meanwhile
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(temporary, out_dir)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    return out_dir


def read_manifest(out_dir):
    """The ``samplenet.json`` manifest of an exported folder, as a dict."""
    return json.loads((Path(out_dir) / MANIFEST).read_text(encoding="utf-8"))
