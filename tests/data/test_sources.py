"""Tests of data sources: specs, folders, Speech Commands layout and the hash split."""
import hashlib

import numpy as np
import pytest
import soundfile as sf

import samplenet.data
from samplenet.audio import AudioError
from samplenet.data import SPLITS, Example, Source, from_spec, sources

SAMPLE_RATE = 16000


def _tone(num_samples=1600, frequency=440.0, sample_rate=SAMPLE_RATE):
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(num_samples) / sample_rate)


def _write(path, audio, sample_rate=SAMPLE_RATE, subtype="PCM_16", **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.asarray(audio, np.float32), sample_rate, subtype=subtype, **kwargs)


def _keys(source, split):
    return [example.key for example in source.examples(split)]


@pytest.fixture
def mixed_folder(tmp_path):
    """Two good files, two that read but fail on load, four unusable ones, one non-audio."""
    folder = tmp_path / "mixed"
    _write(folder / "good.wav", _tone())
    _write(folder / "sub" / "deeper" / "good.FLAC", _tone(800, 330.0), format="FLAC")
    _write(folder / "nan.wav", np.full(800, np.nan), subtype="FLOAT")
    _write(folder / "silent.wav", np.zeros(800))
    _write(folder / "no_frames.wav", np.zeros(0))
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("this is not audio\n")
    (folder / "truncated.wav").write_bytes((folder / "good.wav").read_bytes()[:20])
    (folder / "notes.txt").write_text("ignored: not an audio extension\n")
    return folder


def test_folder_lists_good_files_and_skips_bad_ones(mixed_folder):
    source = from_spec(str(mixed_folder), valid_fraction=0.0, test_fraction=0.0)
    assert _keys(source, "all") == ["good.wav", "nan.wav", "silent.wav",
                                    "sub/deeper/good.FLAC"]
    assert _keys(source, "train") == _keys(source, "all")
    assert source.sample_rate == SAMPLE_RATE and source.num_classes == 0
    assert all(example.label == -1 for example in source.examples("all"))
    skipped = dict(source.skipped)
    assert set(skipped) == {str(mixed_folder / name) for name in
                            ("empty.wav", "text.wav", "truncated.wav", "no_frames.wav")}
    assert "empty" in skipped[str(mixed_folder / "empty.wav")]
    assert all(isinstance(reason, str) and reason for reason in skipped.values())


def test_folder_load_returns_the_file_audio(mixed_folder):
    source = from_spec(mixed_folder)
    audio = source.load(Example("good.wav"))
    assert audio.dtype == np.float32 and audio.shape == (1600,)
    np.testing.assert_allclose(audio, _tone(), atol=1e-4)


@pytest.mark.parametrize("name, problem", [("nan.wav", "NaN"), ("silent.wav", "silent")])
def test_folder_load_of_nan_or_silent_file_raises_naming_it(mixed_folder, name, problem):
    source = from_spec(str(mixed_folder))
    with pytest.raises(AudioError, match=problem) as raised:
        source.load(Example(name))
    assert name in str(raised.value)


def test_folder_sample_rate_is_requested_or_most_common(tmp_path):
    for index in range(2):
        _write(tmp_path / f"high_{index}.wav", _tone(), SAMPLE_RATE)
    _write(tmp_path / "low.wav", _tone(800, sample_rate=8000), 8000)
    assert from_spec(tmp_path).sample_rate == SAMPLE_RATE
    resampled = from_spec(tmp_path, sample_rate=8000)
    assert resampled.sample_rate == 8000
    assert resampled.load(Example("high_0.wav")).shape == (800,)
    assert resampled.load(Example("low.wav")).shape == (800,)


def test_folder_of_only_bad_files_raises_naming_folder_and_files(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.flac").write_text("not audio")
    with pytest.raises(ValueError, match="no usable audio") as raised:
        from_spec(str(tmp_path))
    message = str(raised.value)
    assert str(tmp_path) in message and "empty.wav" in message and "text.flac" in message


def test_folder_without_audio_files_raises(tmp_path):
    (tmp_path / "readme.txt").write_text("no audio here")
    with pytest.raises(ValueError, match="no audio files"):
        from_spec(str(tmp_path))


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ValueError, match="does not exist") as raised:
        from_spec(str(tmp_path / "nowhere"))
    assert "builtin:plucked" in str(raised.value)


def test_file_instead_of_folder_raises(tmp_path):
    _write(tmp_path / "one.wav", _tone())
    with pytest.raises(ValueError, match="not a folder"):
        from_spec(str(tmp_path / "one.wav"))


def test_speech_commands_layout_gives_labels_and_list_splits(tmp_path):
    labels = ("yes", "down", "go")
    for label in labels:
        for clip in range(4):
            _write(tmp_path / label / f"clip{clip}_nohash_0.wav", _tone(400, 200.0 + 100 * clip))
    _write(tmp_path / "_background_noise_" / "noise.wav", _tone(400))
    _write(tmp_path / "stray.wav", _tone(400))
    (tmp_path / "validation_list.txt").write_text("yes/clip0_nohash_0.wav\ngo/clip1_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("down/clip2_nohash_0.wav\nyes/clip3_nohash_0.wav\n")
    source = from_spec(str(tmp_path), valid_fraction=0.5, test_fraction=0.4)
    assert source.class_names == ("down", "go", "yes") and source.num_classes == 3
    assert len(source.examples("all")) == 12
    for example in source.examples("all"):
        assert source.class_names[example.label] == example.key.split("/")[0]
    assert _keys(source, "valid") == ["go/clip1_nohash_0.wav", "yes/clip0_nohash_0.wav"]
    assert _keys(source, "test") == ["down/clip2_nohash_0.wav", "yes/clip3_nohash_0.wav"]
    assert len(source.examples("train")) == 8
    assert [path for path, _ in source.skipped] == [str(tmp_path / "stray.wav")]
    assert source.load(source.examples("valid")[0]).shape == (400,)


def test_split_position_is_a_stable_hash():
    key = "plucked/0007"
    expected = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64
    assert sources.split_position(key) == expected


def test_hash_split_follows_positions_and_is_the_same_for_fresh_sources():
    first = from_spec("builtin:sines?num_items=200", valid_fraction=0.1, test_fraction=0.2)
    second = from_spec("builtin:sines?num_items=200&seed=4", valid_fraction=0.1,
                       test_fraction=0.2)
    for split in ("train", "valid", "test"):
        assert first.examples(split) == second.examples(split)
    positions = {key: sources.split_position(key) for key in _keys(first, "all")}
    assert all(positions[key] < 0.1 for key in _keys(first, "valid"))
    assert all(0.1 <= positions[key] < 0.3 for key in _keys(first, "test"))
    assert all(positions[key] >= 0.3 for key in _keys(first, "train"))


def test_hash_split_fractions_are_about_right_on_1000_keys():
    splits = sources.hash_splits([f"file_{index}.wav" for index in range(1000)], 0.1, 0.2)
    # binomial standard deviations: about 9.5 (valid) and 12.6 (test); allow 4 of them
    assert abs(splits.count("valid") - 100) < 38
    assert abs(splits.count("test") - 200) < 51


def test_hash_split_never_leaves_train_empty():
    keys = [f"k{index}" for index in range(3)]
    splits = sources.hash_splits(keys, 0.9, 0.099)
    positions = [sources.split_position(key) for key in keys]
    assert splits.count("train") >= 1
    assert splits[int(np.argmax(positions))] == "train"
    assert sources.hash_splits(["only"], 0.5, 0.4) == ["train"]


def test_examples_partition_all_sorted_by_key():
    source = from_spec("builtin:plucked?num_items=40&item_seconds=0.1")
    everything = _keys(source, "all")
    assert everything == sorted(everything) and everything[7] == "plucked/0007"
    parts = [_keys(source, split) for split in ("train", "valid", "test")]
    assert sorted(sum(parts, [])) == everything
    assert len(set(sum(parts, []))) == len(everything)
    assert source.examples("train") and SPLITS == {"train", "valid", "test", "all"}


def test_examples_of_unknown_split_raises():
    with pytest.raises(ValueError, match="split"):
        from_spec("builtin:sines?num_items=2").examples("training")


def test_builtin_load_of_foreign_example_raises():
    with pytest.raises(ValueError, match="not an example"):
        from_spec("builtin:sines?num_items=2").load(Example("sines/0005"))


def test_builtin_sample_rate_argument_sets_rate():
    source = from_spec("builtin:sines?num_items=1&item_seconds=0.5", sample_rate=8000)
    assert source.sample_rate == 8000
    assert source.load(source.examples("all")[0]).shape == (4000,)
    assert isinstance(source, Source)
    assert source.name == "builtin:sines?num_items=1&item_seconds=0.5"


@pytest.mark.parametrize("spec, message", [
    ("builtin:nope", "builtin:ar2, builtin:plucked, builtin:sines"),
    ("builtin:", "unknown built-in"),
    ("builtin:plucked?foo=1", "item_seconds, num_items, sample_rate, seed"),
    ("builtin:ar2?d=1", "a, b, c, item_seconds, noise"),
    ("builtin:plucked?num_items", "bad parameter"),
    ("builtin:plucked?num_items=abc", "integer"),
    ("builtin:plucked?num_items=2.5", "integer"),
    ("builtin:plucked?num_items=0", "num_items"),
    ("builtin:plucked?item_seconds=-1", "item_seconds"),
    ("builtin:plucked?item_seconds=1e-9", "no samples"),
    ("builtin:plucked?seed=-1", "seed"),
    ("builtin:plucked?sample_rate=0", "sample_rate"),
    ("builtin:ar2?a=nan", "finite"),
    ("builtin:ar2?a=x", "number"),
    ("builtin:ar2?a=0.1&a=0.2", "twice"),
    ("builtin:ar2?a=1.2&b=0.1", "stationary"),
])
def test_bad_builtin_spec_raises(spec, message):
    with pytest.raises(ValueError, match=message):
        from_spec(spec)


def test_builtin_sample_rate_conflicting_with_argument_raises():
    with pytest.raises(ValueError, match="sample_rate"):
        from_spec("builtin:plucked?sample_rate=8000", sample_rate=16000)


@pytest.mark.parametrize("kwargs", [
    {"valid_fraction": -0.1}, {"valid_fraction": 1.0}, {"test_fraction": 1.5},
    {"valid_fraction": 0.5, "test_fraction": 0.5}, {"valid_fraction": "0.1"},
    {"sample_rate": 0}, {"sample_rate": 16000.0}, {"seed": -1},
])
def test_bad_from_spec_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        from_spec("builtin:sines?num_items=2", **kwargs)


def test_bad_fractions_raise_for_folders_too(mixed_folder):
    with pytest.raises(ValueError, match="valid_fraction"):
        from_spec(mixed_folder, valid_fraction=0.7, test_fraction=0.3)


def test_data_package_exports_sources_and_lazy_pipelines():
    assert samplenet.data.from_spec is sources.from_spec
    assert {"training_dataset", "tbptt_dataset", "windows_dataset",
            "segments_dataset"} <= set(dir(samplenet.data))
    with pytest.raises(AttributeError):
        samplenet.data.no_such_name  # noqa: B018
    pipelines = pytest.importorskip("samplenet.data.pipelines")
    assert samplenet.data.training_dataset is pipelines.training_dataset


def _cut_short(path, audio, frames_kept):
    """Write ``audio`` to ``path`` as an interrupted copy would leave it: the 16-bit mono WAV
    header of the whole, the first ``frames_kept`` frames."""
    _write(path, audio)
    path.write_bytes(path.read_bytes()[:44 + 2 * frames_kept])
    return path


def test_folder_skips_a_truncated_file_shorter_than_one_example(tmp_path):
    for name in ("a.wav", "b.wav"):
        _write(tmp_path / name, _tone(16000))
    cut = _cut_short(tmp_path / "cut.wav", _tone(80322), 1478)
    source = from_spec(str(tmp_path), example_seconds=0.5)
    assert [example.key for example in source.examples("all")] == ["a.wav", "b.wav"]
    [(path, reason)] = source.skipped
    assert path == str(cut)
    assert "header says 80,322 frames, the file holds 1,478" in reason
    assert "shorter than one example (0.5 s)" in reason


def test_folder_keeps_a_truncated_file_holding_an_example_and_warns(tmp_path, caplog):
    _write(tmp_path / "a.wav", _tone(16000))
    _cut_short(tmp_path / "cut.wav", _tone(80322), 12000)
    with caplog.at_level("WARNING", logger=sources.__name__):
        source = from_spec(str(tmp_path), example_seconds=0.5)
    assert [example.key for example in source.examples("all")] == ["a.wav", "cut.wav"]
    assert source.skipped == []
    [warning] = [record.getMessage() for record in caplog.records]
    assert "cut.wav: truncated: its header says 80,322 frames, the file holds 12,000" in warning


def test_folder_example_seconds_must_not_be_negative(tmp_path):
    _write(tmp_path / "a.wav", _tone())
    with pytest.raises(ValueError, match="example_seconds must be a number of seconds >= 0"):
        from_spec(str(tmp_path), example_seconds=-1.0)

