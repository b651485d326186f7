"""A dense projection with optional weight normalisation."""
import contextlib

import keras
import tensorflow as tf

from samplenet.validation import check_positive_int


@keras.saving.register_keras_serializable(package="samplenet")
class Linear(keras.layers.Layer):
    """``y = x @ W + b`` over the last axis, with optional weight normalisation.

    With ``weight_norm=True`` the kernel is ``g * v / ||v||`` (norm over the input axis, one
    gain ``g`` per output unit; Salimans & Kingma 2016), as in the reference SampleRNN.

    Args:
      units: output size.
      use_bias: add a bias.
      weight_norm: reparameterise the kernel by direction and gain.
      kernel_initializer: a Keras initializer name or config.
    Shapes: ``(..., input_dim)`` -> ``(..., units)``.
    """

    def __init__(self, units, use_bias=True, weight_norm=False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.use_bias = use_bias
        self.weight_norm = weight_norm
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self._frozen_kernel = None

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        self.v = self.add_weight(name="kernel", shape=(input_dim, self.units),
                                 initializer=self.kernel_initializer)
        if self.weight_norm:
            self.g = self.add_weight(name="gain", shape=(self.units,), initializer="ones")
        if self.use_bias:
            self.b = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def kernel(self):
        """The effective ``(input_dim, units)`` kernel."""
        if self._frozen_kernel is not None:
            return self._frozen_kernel
        if not self.weight_norm:
            return self.v
        return self.g * self.v / tf.norm(self.v, axis=0, keepdims=True)

    def call(self, inputs):
        outputs = tf.tensordot(inputs, self.kernel(), axes=1) if inputs.shape.rank > 2 \
            else tf.matmul(inputs, self.kernel())
        if self.use_bias:
            outputs = outputs + self.b
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias,
                "weight_norm": self.weight_norm,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@contextlib.contextmanager
def frozen_kernels(layers):
    """Within the block, each ``Linear`` of ``layers`` uses its effective kernel computed once on
    entry: a loop traced inside (generation) reads a loop-invariant matrix instead of
    re-normalising the weights at every step."""
    layers = [layer for layer in layers if layer.weight_norm]
    for layer in layers:
        layer._frozen_kernel = tf.cast(layer.kernel(), layer.compute_dtype)
    try:
        yield
    finally:
        for layer in layers:
            layer._frozen_kernel = None
