"""The graphs a GPU runs have GPU kernels, checked on the CPU from TensorFlow's kernel registry.

Every operation inside an XLA-compiled function (the generation loops, as ``generate`` and the
exported ``generate`` signature run them) needs an XLA GPU kernel for its dtypes; every other
floating-point operation (a SampleRNN training step: samplenet's recurrent op and its
written-out gradient, the sample MLP's lookup table, loss scaling) needs a GPU kernel, or
TensorFlow runs it on the host and copies its tensors across at every step. Integer and boolean
operations outside XLA are shape arithmetic and control, and string constants there are
assertion messages (the exported ``generate`` checks its inputs): TensorFlow keeps them in host
memory on a GPU by design.
"""
import functools

import keras
import pytest
import tensorflow as tf
from tensorflow.python.framework import kernels

import samplenet
from samplenet.export import _generate_function
from samplenet.models.samplernn import SampleRNN
from samplenet.training.optimizers import make_optimizer

HOST_TYPES = frozenset({tf.int32, tf.int64, tf.bool, tf.resource, tf.string})
CALLED_FUNCTIONS = ("f", "body", "cond", "then_branch", "else_branch", "branches")
SKIPPED = frozenset({"Placeholder", "_Arg", "_Retval"})  # a function's inputs and outputs


@pytest.fixture(scope="module", autouse=True)
def _xla_kernels_registered():
    """TensorFlow lists its XLA kernels once XLA has compiled something."""
    tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0))


def _types(node):
    """The dtypes of ``node``'s type attributes, by attribute name."""
    found = {}
    for name, value in node.attr.items():
        if value.HasField("list") and value.list.type:
            found[name] = [tf.dtypes.as_dtype(t) for t in value.list.type]
        elif value.type:
            found[name] = [tf.dtypes.as_dtype(value.type)]
    return found


@functools.lru_cache(maxsize=None)
def _kernels(op):
    """``(device type, {attribute: allowed dtype enums})`` of each kernel registered for ``op``."""
    return [(kernel.device_type, {constraint.name: set(constraint.allowed_values.list.type)
                                  for constraint in kernel.constraint})
            for kernel in kernels.get_registered_kernels_for_op(op).kernel]


def _has_kernel(node, device_types):
    types = _types(node)
    return any(device in device_types
               and all(all(t.as_datatype_enum in allowed for t in types.get(name, []))
                       for name, allowed in constraints.items())
               for device, constraints in _kernels(node.op))


def _called(node):
    names = []
    for attribute in CALLED_FUNCTIONS:
        if attribute in node.attr:
            value = node.attr[attribute]
            names += [f.name for f in value.list.func] if value.HasField("list") \
                else [value.func.name]
    return [name for name in names if name]


def _without_gpu_kernels(concrete):
    """``(missing, num_compiled)``: ``(op, dtypes)`` of every operation of ``concrete`` (and the
    functions it calls) that a GPU cannot run (no XLA GPU kernel inside XLA-compiled functions,
    no GPU kernel for a floating-point operation elsewhere), and the number of operations
    checked inside XLA-compiled functions."""
    graph = concrete.graph.as_graph_def()
    library = {function.signature.name: function for function in graph.library.function}
    missing, seen, compiled_ops = set(), set(), []

    def visit(nodes, compiled):
        for node in nodes:
            compiled_here = compiled or (
                "_XlaMustCompile" in node.attr and node.attr["_XlaMustCompile"].b)
            for name in _called(node):
                if (name, compiled_here) not in seen and name in library:
                    seen.add((name, compiled_here))
                    visit(library[name].node_def, compiled_here)
            if node.op in SKIPPED or node.op in library:
                continue
            types = _types(node)
            if compiled:
                compiled_ops.append(node.op)
                ok = _has_kernel(node, {"XLA_GPU_JIT"})
            else:
                ok = (types and all(t in HOST_TYPES for ts in types.values() for t in ts)) \
                    or _has_kernel(node, {"GPU", "DEFAULT"})
            if not ok:
                missing.add((node.op, tuple(sorted(
                    f"{name}={'/'.join(t.name for t in ts)}" for name, ts in types.items()))))

    top = concrete.function_def.attr.get("_XlaMustCompile")
    visit(graph.node, compiled=top is not None and top.b)
    return sorted(missing), len(compiled_ops)


def test_kernel_check_flags_host_only_operations():
    """The check itself: a string op and a float16 scatter-add (no GPU kernels) are found, in
    XLA-compiled and in plain functions; a float32 matmul is not."""
    @tf.function(jit_compile=True)
    def compiled(x):
        return tf.strings.length(tf.strings.as_string(x)) + 1

    @tf.function
    def plain(x):
        y = tf.matmul(x, x)
        return tf.tensor_scatter_nd_add(tf.cast(y, tf.float16), [[0]], tf.zeros([1, 2],
                                                                             tf.float16))

    missing, _ = _without_gpu_kernels(
        compiled.get_concrete_function(tf.TensorSpec([2], tf.float32)))
    assert {"AsString", "StringLength"} <= {op for op, _ in missing}
    missing, num_compiled = _without_gpu_kernels(
        plain.get_concrete_function(tf.TensorSpec([2, 2], tf.float32)))
    assert {op for op, _ in missing} == {"TensorScatterAdd"} and num_compiled == 0


@pytest.mark.parametrize("family, overrides, policy", [
    ("samplernn_3tier", dict(dim=16, emb_size=8, seq_len=64, rnn_type="lstm", num_classes=2),
     "float32"),
    ("samplernn_2tier", dict(dim=16, emb_size=8, seq_len=64), "mixed_float16"),
    ("samplernn_2tier", dict(dim=16, emb_size=8, seq_len=64), "mixed_bfloat16"),
    ("wavenet_toy", dict(num_classes=2), "float32"),
    ("wavenet_toy", {}, "mixed_float16"),
    ("linear_ar", {}, "float32"),
])
def test_generation_loops_have_xla_gpu_kernels(family, overrides, policy):
    """The loops of ``generate`` (traced as the exported ``generate`` signature runs them)."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = samplenet.build_model(family, **overrides)
        model.ensure_built()
        concrete = _generate_function(model).get_concrete_function()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    missing, num_compiled = _without_gpu_kernels(concrete)
    assert missing == [] and num_compiled > 20  # the loop was found and checked


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_samplernn_training_step_has_gpu_kernels(rnn_type, policy):
    """samplenet's recurrent op (the path a GPU takes where cuDNN is not chosen) and the rest
    of the step, in every precision the trainer offers."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = SampleRNN(frame_sizes=[4, 8], dim=16, emb_size=8, q_levels=16, seq_len=32,
                          rnn_type=rnn_type, num_rnn_layers=2)
        model.compile(optimizer=make_optimizer({"mixed_precision": policy}))
        model.optimizer.build(model.trainable_variables)
        batch = {key: tf.constant(value) for key, value in model.example_batch(2).items()}
        model.reset_carried_state()
        concrete = tf.function(model.train_step).get_concrete_function(batch)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert _without_gpu_kernels(concrete) == ([], 0)
