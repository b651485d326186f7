"""Presets and configuration overrides: every preset builds, unknown or ill-typed keys fail."""
import json

import pytest

from samplenet import config as schema


@pytest.mark.parametrize("preset", schema.preset_names())
def test_every_preset_builds_with_its_own_arguments(preset):
    raw = schema.load_preset(preset)
    model = schema.build_model(preset).ensure_built()
    config = model.get_config()
    for key, value in schema.model_arguments(raw).items():
        expected = list(value) if isinstance(value, tuple) else value
        got = list(config[key]) if isinstance(config[key], tuple) else config[key]
        assert got == expected, key
    assert model.family == raw["family"]
    assert model.count_params() > 0


def test_presets_include_the_documented_ones():
    assert {"samplernn_2tier", "samplernn_3tier", "wavenet", "wavenet_toy", "linear_ar",
            "soundstream"} <= set(schema.preset_names())


def test_cpu_sized_and_full_size_presets_pair_by_name():
    assert schema.cpu_sized_preset("samplernn_3tier") == "samplernn_3tier_cpu"
    assert schema.full_size_preset("samplernn_3tier_cpu") == "samplernn_3tier"
    assert schema.cpu_sized_preset("samplernn_3tier_cpu") is None
    assert schema.cpu_sized_preset("wavenet") is None  # no wavenet_cpu preset
    assert schema.full_size_preset("wavenet") is None and schema.full_size_preset(None) is None


def test_the_cpu_sized_samplernn_differs_from_the_paper_size_only_in_size_and_schedule():
    cpu = schema.config_for("samplernn_3tier_cpu")
    full = schema.config_for("samplernn_3tier")
    changed = {key for key in set(cpu) | set(full) if cpu.get(key) != full.get(key)}
    assert changed <= {"dim", "seq_len", "data", "train"}, changed
    assert cpu["dim"] < full["dim"]


def test_differences_lists_the_keys_that_differ_with_the_other_value():
    config = schema.config_for("samplernn_3tier", ["dim=32", "train.batch_size=4"])
    other = schema.config_for("samplernn_3tier")
    assert schema.differences(config, other, ["dim", "seq_len", "train.batch_size"]) == [
        "dim 32 (1024)", "train.batch_size 4 (32)"]


def test_overrides_reach_model_and_sections():
    config = schema.config_for("samplernn_3tier", ["dim=32", "train.learning_rate=3e-4",
                                                     "data.spec=builtin:sines",
                                                     "frame_sizes=[4, 16]"])
    assert config["dim"] == 32 and config["frame_sizes"] == [4, 16]
    assert config["train"]["learning_rate"] == 3e-4
    assert config["data"]["spec"] == "builtin:sines"


@pytest.mark.parametrize("override, match", [
    ("dimension=3", "unknown key 'dimension'"), ("train.lr=1", "unknown key 'train.lr'"),
    ("data.folder=x", "unknown key 'data.folder'"), ("train.batch_size=8.5", "integer"),
    ("train.learning_rate=fast", "number"), ("train.jit_compile=1", "true or false"),
    ("no_equals_sign", "key=value")])
def test_bad_overrides_name_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        schema.config_for("samplernn_3tier", [override])


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match="samplernn_3tier"):
        schema.build_model("samplernn_9tier")


def test_config_file_round_trip(tmp_path):
    config = schema.config_for("samplernn_2tier", {"dim": 8})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert schema.resolve(schema.load_config_file(path)) == config
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        schema.load_config_file(tmp_path / "bad.json")


def test_codec_configs_have_the_codec_loss_section_and_others_do_not():
    codec = schema.config_for("soundstream", ["codec_loss.mel_weight=1",
                                              "codec_loss.mel_windows=[64, 128]"])
    assert codec["codec_loss"] == {**schema.CODEC_LOSS_DEFAULTS, "mel_weight": 1.0,
                                   "mel_windows": [64, 128]}
    assert "mel_weight" not in codec
    wavenet = schema.config_for("wavenet")
    assert "codec_loss" not in wavenet
    with pytest.raises(ValueError, match="unknown key 'codec_loss.mel_weight'"):
        schema.config_for("wavenet", ["codec_loss.mel_weight=1"])
    with pytest.raises(ValueError, match="unknown key 'codec_loss'"):
        schema.resolve({"family": "wavenet", "codec_loss": {}})


@pytest.mark.parametrize("override, match", [
    ("codec_loss.adversarial=1", "codec_loss.adversarial must be true or false"),
    ("codec_loss.mel_windows=64", "codec_loss.mel_windows must be a list"),
    ("codec_loss.loudness_weight=1", "unknown key 'codec_loss.loudness_weight'"),
    ("mel_weight=1", "unknown key 'mel_weight'")])
def test_bad_codec_loss_overrides_name_the_key(override, match):
    with pytest.raises(ValueError, match=match):
        schema.config_for("soundstream", [override])
