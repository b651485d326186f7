"""Tests of samplenet.analysis.model: receptive fields against gradients for every preset,
parameter counts against Keras, FLOPs against hand counts, the report's forms."""
import json

import numpy as np
import pytest
import tensorflow as tf

from samplenet.analysis import analyze_model
from samplenet.analysis.model import layer_table
from samplenet import config as schema
from samplenet.ops.receptive_field import dependent_positions

# Narrow widths for each preset: the structure that sets the receptive field (dilations,
# frame sizes, strides, order) is the preset's own.
NARROW = {
    "samplernn": {"dim": 8, "emb_size": 4, "q_levels": 16},
    "wavenet": {"residual_channels": 4, "dilation_channels": 4, "skip_channels": 8,
                "q_levels": 16},
    "linear_ar": {},
    "soundstream": {"channels": 2, "latent_dim": 4, "num_quantizers": 2, "codebook_size": 8},
}


def _family(preset):
    return schema.load_preset(preset)["family"]


@pytest.mark.parametrize("preset", schema.preset_names())
def test_receptive_field_formula_equals_gradients(preset):
    report = analyze_model(preset, NARROW[_family(preset)])
    if report.family == "samplernn":
        assert report.receptive_field is None
        assert report.frame_context == schema.load_preset(preset)["frame_sizes"][-1]
        assert report.receptive_field_measured == report.frame_context
    else:
        assert report.receptive_field_measured == report.receptive_field
    if preset == "wavenet":
        assert report.receptive_field == 5117  # FIELD-NOTES: 320 ms at 16 kHz
    if preset == "soundstream":
        assert report.receptive_field == 5314


@pytest.mark.slow
def test_full_wavenet_receptive_field_survives_the_depth():
    """With the preset's 512 skip channels (small residual weights at initialisation) the
    unscaled gradient 5000 samples back underflows to zero (measured: 5051)."""
    report = analyze_model("wavenet", {"q_levels": 16, "residual_channels": 16,
                                       "dilation_channels": 16})
    assert report.receptive_field_measured == report.receptive_field == 5117


def test_samplernn_frame_context_is_causal():
    model = schema.build_model("samplernn_3tier", **NARROW["samplernn"])
    length = model.overlap + model.frame_sizes[-1]
    positions = dependent_positions(lambda x: model.forward(x)[0], length,
                                    position=0, channels=model.q_levels)
    np.testing.assert_array_equal(positions, np.arange(model.overlap))


@pytest.mark.parametrize("num_classes", [0, 3])
def test_samplernn_forward_on_one_hot_levels_equals_call(num_classes):
    """The differentiable form of the forward pass (one-hot levels) that the receptive field
    is measured on is the same pass as ``call`` on the levels."""
    model = schema.build_model("samplernn_3tier", num_classes=num_classes,
                                 **NARROW["samplernn"])
    codes = np.random.default_rng(0).integers(0, 16, (2, model.overlap + 128)).astype(np.int32)
    label = np.array([2, 0], np.int32) if num_classes else None
    inputs = {"samples": codes, **({"label": label} if num_classes else {})}
    expected = model(inputs).numpy()
    actual = model.forward(tf.one_hot(codes, 16), label)[0].numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)
    assert analyze_model(model).receptive_field_measured == model.frame_sizes[-1]


@pytest.mark.parametrize("preset", schema.preset_names())
def test_parameters_equal_keras_count_params(preset):
    model = schema.build_model(preset)
    model.ensure_built()
    report = analyze_model(model, measure=False)
    assert report.parameters == model.count_params()
    assert sum(count for _, _, count in report.layers) == model.count_params()
    for name, _, count in report.layers:
        if name != "(model)":
            assert count == model.get_layer(name).count_params()
    assert report.weight_bytes == 4 * model.count_params()
    assert report.gamma == pytest.approx(report.parameters / report.depth)


def test_layer_table_lists_the_model_own_weights():
    model = schema.build_model("linear_ar", order=3)
    model.ensure_built()
    rows = layer_table(model)
    assert rows[0] == ("predictor", "CausalConv1D", 4)
    assert rows[-1] == ("(model)", "LinearAR", 2)  # residual EMA and its update count
    assert sum(count for _, _, count in rows) == model.count_params()


def test_tiny_wavenet_flops_equal_a_hand_count():
    report = analyze_model("wavenet", {"dilations": [1, 2], "filter_width": 2,
                                       "input_width": 2, "residual_channels": 4,
                                       "dilation_channels": 3, "skip_channels": 5,
                                       "q_levels": 8, "target_len": 10})
    # Multiply-adds per sample: one-hot input conv 2*8*4 = 64; block 0: dilated conv
    # 2*4*(2*3) = 48 + projection 3*(5 skip + 4 residual) = 27; last block 48 + 3*5 = 15;
    # head 5*5 + 5*8 = 65.
    assert report.flops_per_sample["generation"] == 2 * (64 + 75 + 63 + 65)
    # Training: a window of receptive field 1*3+2 = 5 context + 10 targets runs the layers
    # before the head on 14 positions per 10 targets; x3 for the backward pass.
    assert report.receptive_field == 5
    assert report.flops_per_sample["training"] == pytest.approx(
        3 * 2 * ((64 + 75 + 63) * 14 / 10 + 65))
    assert report.depth == 1 + 2 + 2


def test_tiny_samplernn_flops_equal_a_hand_count():
    report = analyze_model("samplernn_3tier", {"frame_sizes": [2, 4], "dim": 3,
                                               "rnn_type": "gru", "num_rnn_layers": 1,
                                               "emb_size": 2, "mlp_layers": 2, "q_levels": 5,
                                               "seq_len": 4})
    # Tier 0 (frame 2, ratio 2) per frame: input 2*3 + GRU (3+3)*9 + upsampling 3*6 = 78,
    # per sample 39. Tier 1 (frame 4, ratio 2): 4*3 + 54 + 18 = 84, per sample 21.
    # MLP at generation (window via lookup table): hidden 3*3 + output 3*5 = 24.
    assert report.flops_per_sample["generation"] == 2 * (39 + 21 + 24)
    # Training runs the MLP through the same table (built once per batch, not counted): the
    # same multiply-adds, x3 for backward.
    assert report.flops_per_sample["training"] == pytest.approx(3 * 2 * (39 + 21 + 24))
    assert report.depth == 1 + 2 * (1 + 1) + 2


def test_activation_memory_scales_with_batch_and_length():
    one = analyze_model("wavenet_toy", batch_size=1, seq_len=1000, measure=False)
    more = analyze_model("wavenet_toy", batch_size=4, seq_len=2000, measure=False)
    assert more.activation_bytes == pytest.approx(8 * one.activation_bytes, rel=1e-6)
    assert more.training_memory_bytes - more.activation_bytes == 4 * one.weight_bytes


def test_model_report_json_forms():
    wavenet = json.loads(analyze_model("wavenet_toy", measure=False).to_json())
    for key in ("parameters", "depth", "gamma", "receptive_field", "flops_per_sample",
                "weight_bytes", "activation_bytes", "layers"):
        assert key in wavenet
    assert wavenet["receptive_field"] == 256 and wavenet["receptive_field_ms"] == 16.0
    assert set(wavenet["flops_per_sample"]) == {"generation", "training"}
    samplernn = json.loads(analyze_model("samplernn_3tier", NARROW["samplernn"]).to_json())
    assert samplernn["receptive_field"] is None and samplernn["frame_context"] == 64
    assert samplernn["frame_context_measured"] == 64
    text = str(analyze_model("samplernn_3tier", NARROW["samplernn"], measure=False))
    assert "unbounded" in text and "frame_tier_1" in text


def test_bad_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="unknown preset"):
        analyze_model("no_such_model")
    with pytest.raises(ValueError, match="unknown key"):
        analyze_model("wavenet_toy", {"no_such_key": 1})
    with pytest.raises(ValueError, match="batch_size"):
        analyze_model("wavenet_toy", batch_size=0)
    model = schema.build_model("linear_ar")
    with pytest.raises(ValueError, match="overrides"):
        analyze_model(model, {"order": 3})
