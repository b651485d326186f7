"""Tests of samplenet.data.pipelines on a tiny fake source (no files, no other data module)."""
import dataclasses
import itertools
import logging

import numpy as np
import pytest
import tensorflow as tf

from samplenet import quantization
from samplenet.audio import AudioError
from samplenet.data import pipelines

Q_LEVELS = 256
QUANTIZATION = "mu-law"
SILENCE = quantization.silence_code(Q_LEVELS, QUANTIZATION)
_NAMES = itertools.count()


@dataclasses.dataclass(frozen=True)
class FakeExample:
    key: str
    label: int = -1


class FakeSource:
    """Follows the Source contract: files ``f0, f1, ...`` of the given lengths (None: a bad file
    whose ``load`` raises ``AudioError``), random audio unless ``audio`` is given. Every split
    but "valid" holds all files; "valid" is empty. ``loaded`` lists the keys loaded, in order."""

    def __init__(self, lengths, sample_rate=100, labelled=False, audio=None):
        self.name = f"fake:{next(_NAMES)}"
        self.sample_rate = sample_rate
        self.num_classes = 3 if labelled else 0
        self.class_names = ("a", "b", "c") if labelled else ()
        self.skipped = []
        self.loaded = []
        self._lengths = list(lengths)
        self._audio = audio
        self._labelled = labelled

    def examples(self, split):
        if split == "valid":
            return []
        return [FakeExample(f"f{i}", i % 3 if self._labelled else -1)
                for i in range(len(self._lengths))]

    def audio_of(self, index):
        if self._audio is not None:
            return self._audio[index]
        rng = np.random.default_rng(index)
        return rng.uniform(-0.9, 0.9, self._lengths[index]).astype(np.float32)

    def load(self, example):
        self.loaded.append(example.key)
        index = int(example.key[1:])
        if self._lengths[index] is None:
            raise AudioError(f"{example.key}: not a sound file")
        return self.audio_of(index)


def _codes(audio):
    return quantization.encode(audio, Q_LEVELS, QUANTIZATION)


def _take(dataset, count):
    return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def _tbptt(source, **kwargs):
    options = dict(batch_size=3, seq_len=8, overlap=4, example_seconds=0.5, q_levels=Q_LEVELS,
                   quantization=QUANTIZATION)
    options.update(kwargs)
    return pipelines.tbptt_dataset(source, "train", **options)


def _lane_examples(batches, overlap):
    """Per lane, the examples between resets: lists of (samples, mask) subsequences."""
    lanes = [[] for _ in range(len(batches[0]["reset"]))]
    for batch in batches:
        for lane, examples in enumerate(lanes):
            if batch["reset"][lane]:
                examples.append([])
            assert examples, "a lane starts without a reset"
            examples[-1].append((batch["samples"][lane], batch["mask"][lane]))
    return lanes


def _check_example(subsequences, overlap, seq_len):
    """The subsequences of one example are consecutive and carry their overlap context;
    returns the example's codes (its unmasked targets)."""
    targets = np.concatenate([samples[overlap:][mask > 0] for samples, mask in subsequences])
    masks = np.concatenate([mask for _, mask in subsequences])
    assert (masks[:len(targets)] == 1).all() and (masks[len(targets):] == 0).all()
    assert len(masks) - len(targets) < seq_len or not len(targets)
    stream = np.concatenate([np.full(overlap, SILENCE), targets,
                             np.full(len(masks) - len(targets), SILENCE)])
    for j, (samples, _) in enumerate(subsequences):
        np.testing.assert_array_equal(samples, stream[j * seq_len:j * seq_len + overlap + seq_len])
    return targets


def _expected_examples(source, lengths, example_samples):
    examples = []
    for index, length in enumerate(lengths):
        codes = _codes(source.audio_of(index))
        examples += [tuple(codes[s:s + example_samples]) for s in range(0, length,
                                                                        example_samples)]
    return examples


# ----------------------------------------------------------------------------- TBPTT

def test_tbptt_dataset_eval_tiles_every_example_exactly_once():
    lengths = [5, 30, 130, 17, 50, 51]  # 5 < seq_len; 130 and 51 > example (50 samples)
    source = FakeSource(lengths)
    batches = _take(_tbptt(source, repeat=False), 1000)
    found = []
    for examples in _lane_examples(batches, overlap=4):
        for subsequences in examples:
            targets = _check_example(subsequences, overlap=4, seq_len=8)
            if len(targets):
                found.append(tuple(targets))
            else:  # filler: all-masked silence
                assert all((samples == SILENCE).all() for samples, _ in subsequences)
    assert sorted(found) == sorted(_expected_examples(source, lengths, 50))
    assert len(found) == 1 + 1 + 3 + 1 + 1 + 2


def test_tbptt_dataset_overlap_longer_than_seq_len_carries_previous_samples():
    source = FakeSource([40])
    batches = _take(_tbptt(source, batch_size=1, seq_len=4, overlap=10, repeat=False), 100)
    (subsequences,) = _lane_examples(batches, overlap=10)[0]
    targets = _check_example(subsequences, overlap=10, seq_len=4)
    np.testing.assert_array_equal(targets, _codes(source.audio_of(0)))


def test_tbptt_dataset_train_lanes_reset_at_their_own_example_boundaries():
    lengths = [5, 30, 130, 17, 50, 51, 23]
    source = FakeSource(lengths)
    batches = _take(_tbptt(source, seed=3), 60)
    expected = set(_expected_examples(source, lengths, 50))
    resets = np.stack([batch["reset"] for batch in batches])
    assert resets[0].all()
    assert (resets.any(axis=1) & ~resets.all(axis=1)).any(), "rows must reset independently"
    for examples in _lane_examples(batches, overlap=4):
        for subsequences in examples[:-1]:  # the last one may be cut off by take()
            assert tuple(_check_example(subsequences, overlap=4, seq_len=8)) in expected


def test_tbptt_dataset_each_epoch_visits_every_example():
    lengths = [5, 30, 17, 50]
    source = FakeSource(lengths)
    batches = _take(_tbptt(source, batch_size=2, seed=1), 40)
    lanes = _lane_examples(batches, overlap=4)
    # The lanes take the stream's examples one at a time, so their first two examples each are
    # the first four of the stream: the first epoch.
    first_epoch = [tuple(_check_example(subsequences, overlap=4, seq_len=8))
                   for examples in lanes for subsequences in examples[:2]]
    assert sorted(first_epoch) == sorted(_expected_examples(source, lengths, 50))


def test_tbptt_dataset_more_lanes_than_examples_repeats_the_example():
    source = FakeSource([30])
    batches = _take(_tbptt(source, batch_size=3), 12)
    expected = tuple(_codes(source.audio_of(0)))
    for examples in _lane_examples(batches, overlap=4):
        assert len(examples) == 3
        for subsequences in examples:
            assert tuple(_check_example(subsequences, overlap=4, seq_len=8)) == expected


def test_tbptt_dataset_labels_follow_their_example():
    source = FakeSource([20, 9, 33], labelled=True)
    batches = _take(_tbptt(source, repeat=False, with_labels=True), 100)
    by_codes = {tuple(_codes(source.audio_of(i))): i % 3 for i in range(3)}
    for lane in range(3):
        examples = _lane_examples(batches, overlap=4)[lane]
        rows = iter(batch["label"][lane] for batch in batches)
        for subsequences in examples:
            labels = {next(rows) for _ in subsequences}
            targets = tuple(_check_example(subsequences, overlap=4, seq_len=8))
            if targets:
                assert labels == {by_codes[targets]}


def test_tbptt_dataset_shapes_are_static():
    for repeat in (True, False):
        spec = _tbptt(FakeSource([30, 12]), repeat=repeat, with_labels=False).element_spec
        assert spec["samples"].shape == (3, 12) and spec["samples"].dtype == tf.int32
        assert spec["mask"].shape == (3, 8) and spec["mask"].dtype == tf.float32
        assert spec["reset"].shape == (3,) and spec["reset"].dtype == tf.bool
        assert "label" not in spec


@pytest.mark.parametrize("kwargs,name", [({"seq_len": 0}, "seq_len"),
                                         ({"overlap": -1}, "overlap"),
                                         ({"batch_size": 0}, "batch_size"),
                                         ({"example_seconds": 0.0}, "example_seconds"),
                                         ({"quantization": "cubic"}, "quantization"),
                                         ({"with_labels": True}, "with_labels")])
def test_tbptt_dataset_invalid_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _tbptt(FakeSource([30]), **kwargs)


# ----------------------------------------------------------------------------- windows

def _windows(source, **kwargs):
    options = dict(batch_size=4, context=16, target_len=8, q_levels=Q_LEVELS,
                   quantization=QUANTIZATION)
    options.update(kwargs)
    return pipelines.windows_dataset(source, "train", **options)


def test_windows_dataset_left_pads_short_files_with_masked_silence():
    source = FakeSource([5])
    (batch,) = _take(_windows(source, batch_size=2), 1)
    expected = np.concatenate([np.zeros(19, np.float32), source.audio_of(0)])
    for row in range(2):
        np.testing.assert_array_equal(batch["audio"][row], expected)
        np.testing.assert_array_equal(batch["mask"][row], [0, 0, 0, 1, 1, 1, 1, 1])
        np.testing.assert_array_equal(batch["samples"][row][:19], SILENCE)


def test_windows_dataset_windows_are_slices_whose_audio_quantizes_to_samples():
    source = FakeSource([100, 40, 3])
    files = [source.audio_of(i) for i in range(3)]
    for batch in _take(_windows(source, seed=5, with_labels=False), 5):
        np.testing.assert_array_equal(batch["samples"], _codes(batch["audio"]))
        for audio, mask in zip(batch["audio"], batch["mask"]):
            if mask.all():
                assert any(np.array_equal(audio, f[s:s + 24]) for f in files
                           for s in range(len(f) - 23))
            else:
                np.testing.assert_array_equal(audio[-3:], files[2])


def test_windows_dataset_eval_targets_tile_each_file_with_its_context():
    source = FakeSource([20, 9])
    batches = _take(_windows(source, batch_size=3, repeat=False), 100)
    audio = np.concatenate([b["audio"] for b in batches])
    mask = np.concatenate([b["mask"] for b in batches])
    assert len(audio) == 3 + 2  # ceil(20 / 8) + ceil(9 / 8) windows
    for index, (first, count) in enumerate([(0, 3), (3, 2)]):
        padded = np.concatenate([np.zeros(16), source.audio_of(index), np.zeros(8)])
        for j in range(count):
            np.testing.assert_array_equal(audio[first + j], padded[j * 8:j * 8 + 24])
        targets = audio[first:first + count, 16:][mask[first:first + count] > 0]
        np.testing.assert_array_equal(targets, source.audio_of(index))


def test_windows_dataset_log_mel_features_align_with_samples():
    # One file exactly one window long: silence, then a tone from sample 128 on.
    sample_rate, onset = 8000, 128
    t = np.arange(256 - onset) / sample_rate
    audio = np.concatenate([np.zeros(onset), 0.5 * np.sin(2 * np.pi * 1000 * t)])
    source = FakeSource([256], sample_rate=sample_rate, audio=[audio.astype(np.float32)])
    condition = {"kind": "log-mel", "hop": 16, "num_mels": 8, "frame_length": 64}
    (batch,) = _take(_windows(source, batch_size=1, context=192, target_len=64,
                              local_condition=condition), 1)
    features = batch["features"][0]
    assert features.shape == (256 // 16, 8)
    # Frame i covers samples [16 i - 24, 16 i + 40): silent up to i = 5, all tone from i = 10.
    frame_energy = features.max(axis=-1)
    np.testing.assert_allclose(frame_energy[:6], np.log(1e-5), rtol=1e-6)
    assert frame_energy[6] > np.log(1e-5) + 1.0
    assert (frame_energy[10:] > np.log(1e-5) + 5.0).all()


def test_windows_dataset_hop_not_dividing_window_raises():
    condition = {"kind": "log-mel", "hop": 5, "num_mels": 8, "frame_length": 10}
    with pytest.raises(ValueError, match="hop"):
        _windows(FakeSource([30]), local_condition=condition)


# ----------------------------------------------------------------------------- segments

def test_segments_dataset_eval_covers_each_file():
    lengths = [25, 7, 40]
    source = FakeSource(lengths)
    batches = _take(pipelines.segments_dataset(source, "train", batch_size=4, segment_samples=10,
                                               repeat=False), 100)
    got = np.concatenate([b["audio"] for b in batches]).reshape(-1)
    expected = np.concatenate([np.pad(source.audio_of(i), (0, -n % 10))
                               for i, n in enumerate(lengths)])
    np.testing.assert_array_equal(got, expected)


def test_segments_dataset_pads_short_files_at_the_end():
    source = FakeSource([6])
    (batch,) = _take(pipelines.segments_dataset(source, "train", batch_size=2,
                                                segment_samples=10), 1)
    assert batch["audio"].shape == (2, 10)
    np.testing.assert_array_equal(batch["audio"][0], np.pad(source.audio_of(0), (0, 4)))


# ----------------------------------------------------------------------------- all pipelines

def _make_pipeline(kind, source, seed):
    if kind == "tbptt":
        return _tbptt(source, seed=seed)
    if kind == "windows":
        return _windows(source, seed=seed)
    return pipelines.segments_dataset(source, "train", batch_size=4, segment_samples=10,
                                      seed=seed)


@pytest.mark.parametrize("kind", ["tbptt", "windows", "segments"])
def test_pipelines_are_deterministic_for_a_seed_and_differ_across_seeds(kind):
    source = FakeSource([30, 45, 12, 60, 8])

    def first_batches(seed):
        return _take(_make_pipeline(kind, source, seed), 12)

    def same(a, b):
        return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in x)

    assert same(first_batches(0), first_batches(0))
    assert not same(first_batches(0), first_batches(1))


@pytest.mark.parametrize("kind", ["tbptt", "windows", "segments"])
def test_pipelines_decode_each_file_once(kind):
    source = FakeSource([30, 45, 12])
    dataset = _make_pipeline(kind, source, 0)
    _take(dataset, 10)
    _take(dataset, 10)
    assert sorted(source.loaded) == ["f0", "f1", "f2"]


def test_pipelines_input_pipelines_partition_the_files():
    source = FakeSource([30, 45, 12, 60, 8])
    loaded = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        source.loaded = []
        dataset = pipelines.segments_dataset(source, "train", batch_size=4, segment_samples=10,
                                             input_context=context)
        assert dataset.element_spec["audio"].shape == (2, 10)
        loaded.append(set(source.loaded))
    assert loaded[0] & loaded[1] == set()
    assert loaded[0] | loaded[1] == {f"f{i}" for i in range(5)}


def test_pipelines_skip_and_record_bad_files(caplog):
    source = FakeSource([30, None, 12])
    with caplog.at_level(logging.WARNING, logger=pipelines.__name__):
        batches = _take(_tbptt(source, repeat=False), 100)
        _windows(source)
    assert pipelines.dataset_skipped(source) == [("f1", "f1: not a sound file")]
    assert sum("f1" in record.getMessage() for record in caplog.records) == 1
    found = [tuple(_check_example(s, 4, 8)) for lane in _lane_examples(batches, 4) for s in lane]
    assert sorted(t for t in found if t) == sorted(
        tuple(_codes(source.audio_of(i))) for i in (0, 2))


def test_pipelines_every_file_bad_raises_listing_them():
    source = FakeSource([None, None])
    with pytest.raises(ValueError, match="f0: f0: not a sound file; f1"):
        _tbptt(source)


def test_pipelines_empty_split_raises_naming_source_and_split():
    source = FakeSource([30])
    with pytest.raises(ValueError, match=f"{source.name}.*valid"):
        pipelines.segments_dataset(source, "valid", batch_size=2, segment_samples=10)


# ----------------------------------------------------------------------------- training_dataset

class FakeModel:
    def __init__(self, data_kind, **options):
        self.data_kind = data_kind
        self._options = options

    def data_options(self):
        return dict(self._options)


def test_training_dataset_dispatches_with_data_section_keys():
    source = FakeSource([60, 20])
    section = {"spec": "ignored", "valid_fraction": 0.1, "test_fraction": 0.1,
               "example_seconds": 0.25, "window_samples": 6, "segment_seconds": 0.3,
               "local_condition": ""}
    tbptt = FakeModel("tbptt", seq_len=8, overlap=2, q_levels=Q_LEVELS, quantization=QUANTIZATION)
    batches = _take(pipelines.training_dataset(tbptt, source, batch_size=2, repeat=False,
                                               **section), 100)
    assert max(int(b["mask"][lane].sum()) for b in batches for lane in range(2)) == 8
    examples = [e for lane in _lane_examples(batches, 2) for e in lane]
    assert len([e for e in examples if _check_example(e, 2, 8).size]) == 3 + 1  # 25-sample cuts

    windows = FakeModel("windows", context=4, target_len=100, q_levels=Q_LEVELS,
                        quantization=QUANTIZATION)
    spec = pipelines.training_dataset(windows, source, batch_size=2, **section).element_spec
    assert spec["mask"].shape == (2, 6) and spec["samples"].shape == (2, 10)

    codec = FakeModel("segments")
    spec = pipelines.training_dataset(codec, source, batch_size=2, **section).element_spec
    assert spec["audio"].shape == (2, 30)


def test_example_seconds_is_one_example_of_each_pipeline_with_the_section_overrides():
    section = {"example_seconds": 0.25, "window_samples": 6, "segment_seconds": 0.3}
    tbptt = FakeModel("tbptt", seq_len=8, overlap=2, q_levels=Q_LEVELS, quantization=QUANTIZATION)
    assert pipelines.example_seconds(tbptt, 100, **section) == 0.25
    windows = FakeModel("windows", context=4, target_len=100, q_levels=Q_LEVELS,
                        quantization=QUANTIZATION)
    assert pipelines.example_seconds(windows, 100, **section) == pytest.approx(0.10)  # 4 + 6
    assert pipelines.example_seconds(windows, 100) == pytest.approx(1.04)  # 4 + 100
    assert pipelines.example_seconds(FakeModel("segments"), 100, **section) == pytest.approx(0.3)


def test_training_dataset_log_mel_needs_a_model_that_takes_it():
    model = FakeModel("windows", context=4, target_len=12, q_levels=Q_LEVELS,
                      quantization=QUANTIZATION)
    with pytest.raises(ValueError, match="local_condition"):
        pipelines.training_dataset(model, FakeSource([60]), batch_size=2,
                                   local_condition="log-mel")
    condition = {"kind": "log-mel", "hop": 4, "num_mels": 3, "frame_length": 8}
    model = FakeModel("windows", context=4, target_len=12, q_levels=Q_LEVELS,
                      quantization=QUANTIZATION, local_condition=condition)
    spec = pipelines.training_dataset(model, FakeSource([60]), batch_size=2,
                                      local_condition="log-mel").element_spec
    assert spec["features"].shape == (2, 4, 3)
    spec = pipelines.training_dataset(model, FakeSource([60]), batch_size=2,
                                      window_samples=6).element_spec  # 4 + 6 -> 12 samples
    assert spec["features"].shape == (2, 3, 3) and spec["mask"].shape == (2, 8)


def test_training_dataset_unknown_data_key_raises():
    with pytest.raises(ValueError, match="exmaple_seconds"):
        pipelines.training_dataset(FakeModel("segments"), FakeSource([60]), batch_size=2,
                                   exmaple_seconds=1.0)


def test_tbptt_dataset_pipeline_feeding_two_replicas_keeps_lanes_per_replica():
    # tf.distribute gives a pipeline's elements to its replicas in turn: elements 0, 2, 4, ...
    # go to replica 0 and must continue its lanes; 1, 3, 5, ... likewise for replica 1.
    lengths = [5, 30, 130, 17, 50, 51]
    source = FakeSource(lengths)
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                         num_replicas_in_sync=2)
    elements = _take(_tbptt(source, batch_size=4, repeat=False, input_context=context), 1000)
    assert len(elements) % 2 == 0 and elements[0]["reset"].shape == (2,)
    found = []
    for replica in range(2):
        for examples in _lane_examples(elements[replica::2], overlap=4):
            found += [tuple(t) for t in (_check_example(s, 4, 8) for s in examples) if len(t)]
    assert sorted(found) == sorted(_expected_examples(source, lengths, 50))


@pytest.mark.parametrize("kind", ["tbptt", "windows", "segments"])
def test_pipelines_run_without_the_autotuning_model(kind):
    """With tf.data's autotuner on, the end of every fit/evaluate waits for its next wake-up
    (seconds; see ``pipelines.pipeline_options``)."""
    options = _make_pipeline(kind, FakeSource([30, 45, 12]), 0).options()
    assert options.autotune.enabled is False
    assert options.deterministic is True
