"""The bad-input matrix (issue 7): every bad input a user can give gets one clear message
naming the culprit, a non-zero exit code and no traceback; convertible audio (stereo, 8/24-bit,
float, other sample rates) is converted and trains; a folder with some bad files trains on the
rest and lists them; nothing unpickles.

Each case runs a command-line program's ``main`` in-process with its absl flags (see
``run_program``); two slow cases run the real console scripts in subprocesses.
"""
import ast
import json
import logging
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import soundfile as sf

import samplenet
from samplenet import audio
from samplenet.data import from_spec, pipelines
from samplenet import config as schema
from samplenet.testing.toy_model import toy_config
from samplenet.training import checkpoints, trainer
from tests.cli.test_train_cli import assert_one_line_error, error_lines, run_cli
from tests.programs import assert_error

RATE = 4000  # the toy model's sample rate


# --------------------------------------------------------------------------- files and runs

def _tone(seconds=0.25, rate=RATE, frequency=440.0, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate)
            ).astype(np.float32)


def _wav(path, data, rate=RATE, subtype="PCM_16"):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, rate, subtype=subtype)
    return path


def _peak_frequency(signal, rate):
    """(frequency of the spectrum's peak, bin width) in Hz."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return np.argmax(spectrum) * rate / len(signal), rate / len(signal)


def _config_file(folder, model=None, **data):
    """A one-step toy config file; ``data`` entries override its data section."""
    config = toy_config(model=model, data=data, steps_per_epoch=1)
    path = Path(folder) / "toy.json"
    path.write_text(json.dumps(config))
    return path


def _train_argv(tmp_path, data, *more):
    """Flags of a one-step toy training run on ``data`` (a folder), validation left out."""
    config = _config_file(tmp_path, valid_fraction=0.0, test_fraction=0.0)
    return (f"--config={config}", f"--data={data}", f"--logdir={tmp_path / 'run'}",
            "--verbose=0", *more)


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A trained toy run directory (one epoch of two steps)."""
    run = tmp_path_factory.mktemp("toy") / "run"
    trainer.train(toy_config(), run, verbose=0)
    return run


@pytest.fixture
def run_copy(toy_run, tmp_path):
    """A copy of ``toy_run`` that a test may damage."""
    return Path(shutil.copytree(toy_run, tmp_path / "run"))


def _checkpoint(run):
    return next((Path(run) / "checkpoints").glob("ckpt-*"))


# --------------------------------------------------------------------------- the matrix

@pytest.mark.parametrize("program, flag", [
    ("train", "--data"), ("train", "--config"), ("generate", "--ckpt"), ("generate", "--prime"),
    ("evaluate", "--ckpt"), ("evaluate", "--data"), ("codec", "--ckpt")])
def test_missing_path_is_one_error_naming_it(run_program, toy_run, tmp_path, program, flag):
    missing = tmp_path / "no_such_thing"
    argv = {"train": [f"--config={_config_file(tmp_path)}", f"--logdir={tmp_path / 'run'}"],
            "generate": [f"--ckpt={toy_run}", f"--out_dir={tmp_path / 'out'}"],
            "evaluate": [f"--ckpt={toy_run}"],
            "codec": ["encode", tmp_path / "in.wav", tmp_path / "codes.npz"]}[program]
    argv = [a for a in argv if not str(a).startswith(flag + "=")] + [f"{flag}={missing}"]
    assert_error(run_program(program, *argv), missing)
    assert not (tmp_path / "run").exists()  # bad data fails before the run directory is made


@pytest.mark.parametrize("program", ["train", "evaluate"])
def test_empty_folder_is_one_error_naming_it(run_program, toy_run, tmp_path, program):
    empty = tmp_path / "empty"
    empty.mkdir()
    argv = (_train_argv(tmp_path, empty) if program == "train"
            else [f"--ckpt={toy_run}", f"--data={empty}"])
    assert_error(run_program(program, *argv), empty, "no audio files")


def _not_audio(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is not audio\n")
    return path


@pytest.mark.parametrize("program", ["train", "generate"])
def test_file_that_is_not_audio_is_one_error_naming_it(run_program, toy_run, tmp_path, program):
    bad = _not_audio(tmp_path / "data" / "notes.wav")
    argv = (_train_argv(tmp_path, bad.parent) if program == "train"
            else [f"--ckpt={toy_run}", f"--prime={bad}", f"--out_dir={tmp_path / 'out'}"])
    assert_error(run_program(program, *argv), bad, "not a readable audio file")


def _zero_length(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def _header_only(path):
    return _wav(path, np.zeros(0, np.float32))


def _truncated_header(path):
    data = _wav(path, _tone()).read_bytes()
    path.write_bytes(data[:20])
    return path


@pytest.mark.parametrize("make, words", [(_zero_length, "empty"),
                                         (_header_only, "no audio frames"),
                                         (_truncated_header, "not a readable audio file")])
@pytest.mark.parametrize("program", ["train", "generate"])
def test_truncated_or_zero_length_audio_is_one_error_naming_it(run_program, toy_run, tmp_path,
                                                               program, make, words):
    bad = make(tmp_path / "data" / "cut.wav")
    argv = (_train_argv(tmp_path, bad.parent) if program == "train"
            else [f"--ckpt={toy_run}", f"--prime={bad}", f"--out_dir={tmp_path / 'out'}"])
    assert_error(run_program(program, *argv), bad, words)


def test_truncated_audio_data_loads_the_frames_present(tmp_path):
    whole = _wav(tmp_path / "whole.wav", _tone())
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + 2 * 300])  # the header and 300 of 1000 samples
    np.testing.assert_allclose(audio.load(cut), audio.load(whole)[:300], atol=0)


@pytest.mark.parametrize("program", ["train", "generate"])
def test_nan_samples_are_one_error_naming_the_file(run_program, toy_run, tmp_path, program):
    samples = _tone()
    samples[100] = np.nan
    bad = _wav(tmp_path / "data" / "nan.wav", samples, subtype="FLOAT")
    argv = (_train_argv(tmp_path, bad.parent) if program == "train"
            else [f"--ckpt={toy_run}", f"--prime={bad}", f"--out_dir={tmp_path / 'out'}"])
    assert_error(run_program(program, *argv), "nan.wav", "NaN")


def test_all_silent_files_are_one_error_naming_them(run_program, tmp_path):
    folder = tmp_path / "data"
    for name in ("a.wav", "b.wav"):
        _wav(folder / name, np.zeros(1000, np.float32))
    result = run_program("train", *_train_argv(tmp_path, folder))
    assert_error(result, "a.wav", "b.wav", "silent")


def _trained_epochs(run):
    """The epoch of a run's checkpoint: 1 once the one-epoch toy run has trained."""
    return json.loads((_checkpoint(run) / "state.json").read_text())["epoch"]


def _loaded(folder, name):
    """A folder file as the toy model trains on it: mono at the toy rate."""
    source = from_spec(folder, sample_rate=RATE, valid_fraction=0.0, test_fraction=0.0)
    return source.load(next(e for e in source.examples("all") if e.key == name))


def test_stereo_8_bit_24_bit_and_float_files_are_converted_and_train(run_program, tmp_path):
    folder = tmp_path / "data"
    left, right = _tone(amplitude=0.6), _tone(frequency=300.0, amplitude=0.2)
    _wav(folder / "stereo.wav", np.stack([left, right], axis=1))
    _wav(folder / "u8.wav", left, subtype="PCM_U8")
    _wav(folder / "s24.wav", left, subtype="PCM_24")
    _wav(folder / "float.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    np.testing.assert_allclose(_loaded(folder, "stereo.wav"), (left + right) / 2, atol=2 ** -15)
    np.testing.assert_allclose(_loaded(folder, "u8.wav"), left, atol=2 ** -7)
    np.testing.assert_allclose(_loaded(folder, "s24.wav"), left, atol=2 ** -23)
    np.testing.assert_allclose(_loaded(folder, "float.wav"), (left + right) / 2, atol=1e-7)
    result = run_program("train", *_train_argv(tmp_path, folder))
    assert result.code == 0 and result.err == "", result
    assert "finished" in result.out and _trained_epochs(tmp_path / "run") == 1


@pytest.mark.parametrize("file_rate", [11025, 44100])
def test_unusual_sample_rates_are_resampled_and_train(run_program, tmp_path, file_rate):
    folder = tmp_path / "data"
    _wav(folder / "tone.wav", _tone(seconds=0.5, rate=file_rate, frequency=440.0), file_rate)
    loaded = _loaded(folder, "tone.wav")
    assert len(loaded) == RATE // 2
    frequency, bin_width = _peak_frequency(loaded, RATE)
    assert abs(frequency - 440.0) <= bin_width
    result = run_program("train", *_train_argv(tmp_path, folder))
    assert result.code == 0 and result.err == "", result
    assert _trained_epochs(tmp_path / "run") == 1


def test_file_too_short_for_one_training_window_is_padded_named_and_trains(run_program,
                                                                            tmp_path, caplog):
    folder = tmp_path / "data"
    _wav(folder / "short.wav", _tone()[:10])  # the toy window is 4 + 32 samples
    source = from_spec(folder, sample_rate=RATE, valid_fraction=0.0, test_fraction=0.0)
    model = samplenet.build_model("toy_ar")
    with caplog.at_level(logging.WARNING):
        batch = next(iter(pipelines.training_dataset(model, source, batch_size=2)))
    [warning] = [r.getMessage() for r in caplog.records if "shorter than one" in r.getMessage()]
    assert "short.wav" in warning and "(36 samples)" in warning
    np.testing.assert_array_equal(np.asarray(batch["mask"]).sum(axis=1), [10, 10])
    np.testing.assert_allclose(np.asarray(batch["audio"])[0, -10:], _tone()[:10], atol=2 ** -15)
    result = run_program("train", *_train_argv(tmp_path, folder))
    assert result.code == 0 and result.err == "", result
    assert _trained_epochs(tmp_path / "run") == 1


def test_unknown_preset_is_one_error_naming_it(run_program, tmp_path):
    result = run_program("train", "--model=no_such_preset", f"--logdir={tmp_path / 'run'}")
    assert_error(result, "'no_such_preset'", "samplernn_3tier")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, culprits", [
    ("nonsense=1", ["'nonsense'"]),
    ("train.nonsense=1", ["'train.nonsense'"]),
    ("data.nonsense=1", ["'data.nonsense'"]),
    ("q_levels=many", ["q_levels", "'many'"]),
    ("kernel_size=2.5", ["kernel_size", "2.5"]),
    ("train.epochs=[1]", ["train.epochs", "[1]"]),
    ("train.learning_rate=fast", ["train.learning_rate", "'fast'"]),
    ("data.example_seconds=true", ["data.example_seconds", "True"]),
    ("q_levels", ["'q_levels'", "key=value"]),
])
def test_unknown_or_ill_typed_set_key_is_one_error_naming_it(run_program, tmp_path, override,
                                                             culprits):
    result = run_program("train", f"--config={_config_file(tmp_path)}", f"--set={override}",
                         f"--logdir={tmp_path / 'run'}")
    assert_error(result, *culprits)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset, override, culprits", [
    ("toy_ar", "kernel_size=0", ["kernel_size", "0"]),
    ("toy_ar", "q_levels=1", ["q_levels", "1"]),
    ("toy_ar", 'quantization="mu"', ["quantization", "'mu'"]),
    ("samplernn_3tier", "frame_sizes=[16,24]", ["frame_sizes", "[16, 24]"]),
    ("samplernn_3tier", "seq_len=1000", ["seq_len", "1000"]),
    ("samplernn_3tier", 'rnn_type="transformer"', ["rnn_type", "'transformer'"]),
    ("wavenet_toy", "dilations=[1,0]", ["dilations", "0"]),
    ("wavenet_toy", "target_len=-5", ["target_len", "-5"]),
    ("toy_ar", "train.batch_size=0", ["train.batch_size", "0"]),
    ("toy_ar", 'train.optimizer="adamw"', ["optimizer", "'adamw'"]),
    ("toy_ar", "data.valid_fraction=0.95", ["valid_fraction", "0.95"]),
    ("toy_ar", "data.window_samples=-3", ["window_samples", "-3"]),
])
def test_impossible_model_config_is_one_error_naming_the_value(run_program, tmp_path, preset,
                                                               override, culprits):
    model = (f"--config={_config_file(tmp_path)}" if preset == "toy_ar"
             else f"--model={preset}")
    result = run_program("train", model, f"--set={override}", f"--logdir={tmp_path / 'run'}",
                         "--verbose=0")
    assert_error(result, *culprits)


@pytest.mark.parametrize("argv, culprits", [
    (["--seconds=0"], ["--seconds", "0"]),
    (["--seconds=-2"], ["--seconds", "-2"]),
    (["--seconds=nan"], ["--seconds", "nan"]),
    (["--temperature=0"], ["--temperature", "'0'"]),
    (["--temperature=-0.5"], ["--temperature", "'-0.5'"]),
    (["--temperature=1,0", "--num_seqs=2"], ["--temperature", "'1,0'"]),
    (["--temperature=nan"], ["--temperature", "'nan'"]),
    (["--num_seqs=0"], ["--num_seqs", "0"]),
])
def test_generation_with_non_positive_length_or_temperature_is_one_error(
        run_program, toy_run, tmp_path, argv, culprits):
    result = run_program("generate", f"--ckpt={toy_run}", f"--out_dir={tmp_path / 'out'}", *argv)
    assert_error(result, *culprits)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("nan_name", ["nan.wav", "c.wav"])  # in the train / the valid split
def test_folder_with_a_few_bad_files_trains_on_the_rest_and_lists_them(run_program, tmp_path,
                                                                       caplog, nan_name):
    folder = tmp_path / "data"
    for name in {"a.wav", "b.wav", "c.wav", "d.wav"} - {nan_name}:
        _wav(folder / name, _tone())
    samples = _tone()
    samples[5] = np.nan
    _wav(folder / nan_name, samples, subtype="FLOAT")
    _not_audio(folder / "notes.wav")
    _zero_length(folder / "empty.wav")
    config = _config_file(tmp_path)  # valid_fraction = test_fraction = 0.3
    with caplog.at_level(logging.WARNING):
        result = run_program("train", f"--config={config}", f"--data={folder}",
                             f"--logdir={tmp_path / 'run'}", "--verbose=0")
    assert result.code == 0 and result.err == "", result
    assert _trained_epochs(tmp_path / "run") == 1
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    for name, reason in ((nan_name, "NaN"), ("notes.wav", "not a readable audio file"),
                         ("empty.wav", "empty")):
        assert re.search(rf"{re.escape(name)}: [^;]*{reason}", warnings), (name, warnings)


LINEAR_AR = {"family": "linear_ar", "order": 2, "q_levels": 8, "sample_rate": RATE}


def _other_config(config, other):
    """``config`` with the model ``other`` describes: another family (its arguments replace the
    model's) or other arguments of the same family."""
    if "family" in other:
        return {**other, "data": config["data"], "train": config["train"]}
    return {**config, **other}


@pytest.mark.parametrize("other, culprits", [
    (LINEAR_AR, ["'linear_ar'"]),
    ({"kernel_size": 3}, ["'toy_ar'", "kernel"]),
])
@pytest.mark.parametrize("program", ["generate", "evaluate"])
def test_checkpoint_from_another_model_family_or_config_is_one_error(
        run_program, run_copy, tmp_path, program, other, culprits):
    config = json.loads((run_copy / "config.json").read_text())
    (run_copy / "config.json").write_text(json.dumps(_other_config(config, other)))
    argv = [f"--ckpt={run_copy}"] + ([f"--out_dir={tmp_path / 'out'}"] if program == "generate"
                                     else [])
    assert_error(run_program(program, *argv), _checkpoint(run_copy), *culprits)


@pytest.mark.parametrize("other, culprits", [
    (LINEAR_AR, ["family", "'toy_ar'", "'linear_ar'"]),
    ({"kernel_size": 3}, ["kernel_size", "4", "3"]),
])
def test_resuming_a_run_with_another_model_family_or_config_is_one_error(
        run_program, run_copy, tmp_path, other, culprits):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(_other_config(toy_config(epochs=2), other)))
    result = run_program("train", f"--config={path}", f"--logdir={run_copy}", "--resume",
                         "--verbose=0")
    assert_error(result, run_copy, *culprits)


def _garble(path):
    path.write_bytes(b"\x00garbage\xff" * max(1, path.stat().st_size // 10))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


@pytest.mark.parametrize("damage, name, culprit", [
    (_garble, "CKPT/ckpt.data-00000-of-00001", "corrupted"),
    (_truncate, "CKPT/ckpt.data-00000-of-00001", "corrupted"),
    (_garble, "CKPT/ckpt.index", "corrupted"),
    (_truncate, "CKPT/ckpt.index", "corrupted"),
    (lambda path: path.unlink(), "CKPT/ckpt.index", "CKPT"),
    (_garble, "CKPT/state.json", "CKPT/state.json"),
    (_garble, "checkpoints/best", "checkpoints/best"),
    (_garble, "config.json", "config.json"),
])
@pytest.mark.parametrize("program", ["generate", "evaluate"])
def test_corrupted_checkpoint_file_is_one_error_naming_it(run_program, run_copy, tmp_path,
                                                          program, damage, name, culprit):
    checkpoint = _checkpoint(run_copy).relative_to(run_copy).as_posix()
    damage(run_copy / name.replace("CKPT", checkpoint))
    argv = [f"--ckpt={run_copy}"] + ([f"--out_dir={tmp_path / 'out'}"] if program == "generate"
                                     else [])
    culprit = culprit.replace("CKPT", checkpoint)
    assert_error(run_program(program, *argv),
                 *([_checkpoint(run_copy), culprit] if culprit == "corrupted"
                   else [run_copy / culprit]))


@pytest.fixture(scope="module")
def codec_run(tmp_path_factory):
    """A run directory holding an untrained tiny codec's checkpoint."""
    tiny = {"channels": 4, "strides": [2, 4], "latent_dim": 8, "num_quantizers": 2,
            "codebook_size": 16, "segment_samples": 2048}
    config = schema.config_for("soundstream", tiny)
    run = tmp_path_factory.mktemp("codec") / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps(config))
    model = schema.model_from_config(config).ensure_built()
    checkpoints.save_checkpoint(run / "checkpoints", model, None, {"epoch": 1}, is_best=True)
    return run


@pytest.mark.parametrize("program", ["generate", "train", "codec decode"])
def test_unwritable_output_directory_is_one_error_naming_it(run_program, toy_run, codec_run,
                                                            tmp_path, program):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder should be")
    out = blocker / "out"
    if program == "generate":
        result = run_program("generate", f"--ckpt={toy_run}", "--seconds=0.01",
                             f"--out_dir={out}")
    elif program == "train":
        result = run_program("train", f"--config={_config_file(tmp_path)}", f"--logdir={out}",
                             "--verbose=0")
    else:
        codes = tmp_path / "codes.npz"
        np.savez(codes, codes=np.zeros((1, 4), np.int16), sample_rate=16000, num_samples=32,
                 hop=8, codebook_size=16)
        result = run_program("codec", f"--ckpt={codec_run}", "decode", codes, out / "x.wav")
    assert_error(result, out, *(["cannot create the run directory"] if program == "train" else []))


def test_codes_file_holding_pickled_objects_is_refused(run_program, codec_run, tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, codes=np.array([{"evil": 1}], dtype=object), sample_rate=16000,
             num_samples=8, hop=8, codebook_size=16)
    result = run_program("codec", f"--ckpt={codec_run}", "decode", pickled, tmp_path / "x.wav")
    assert_error(result, pickled, "allow_pickle=False")
    assert not (tmp_path / "x.wav").exists()


def test_no_library_call_can_unpickle():
    """Every ``np.load`` in the package passes ``allow_pickle=False``; no module imports
    pickle (or a wrapper of it) and no Keras load leaves safe mode."""
    calls = []
    for path in Path(samplenet.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", "")]
                assert not {"pickle", "dill", "cloudpickle", "joblib"} & set(names), path
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("load", "load_model") and \
                    ast.unparse(node.func.value) in ("np", "numpy", "keras.saving",
                                                     "keras.models"):
                keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
                calls.append((path.name, node.func.attr, keywords))
    assert calls, "no np.load / keras load_model call found: the scan is broken"
    for name, function, keywords in calls:
        expected = ("allow_pickle", "False") if function == "load" else ("safe_mode", "True")
        assert keywords.get(expected[0]) == expected[1], (name, function, keywords)


def test_keras_file_with_a_lambda_layer_is_refused_by_safe_mode(tmp_path):
    model = samplenet.build_model("toy_ar").ensure_built()
    model.save(tmp_path / "toy.keras")
    loaded = samplenet.load_model(tmp_path / "toy.keras")
    np.testing.assert_array_equal(loaded.kernel.numpy(), model.kernel.numpy())

    inputs = keras.Input((4,))
    unsafe = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    unsafe.save(tmp_path / "lambda.keras")
    with pytest.raises(ValueError) as error:
        samplenet.load_model(tmp_path / "lambda.keras")
    message = str(error.value)
    assert "lambda.keras" in message and "safe_mode" in message and "\n" not in message


# --------------------------------------------------------------------------- real console runs

@pytest.mark.slow
def test_console_generate_with_corrupted_checkpoint_prints_one_line(run_copy):
    _garble(_checkpoint(run_copy) / "ckpt.data-00000-of-00001")
    result = run_cli("generate.py", f"--ckpt={run_copy}", "--seconds=0.01")
    assert_one_line_error(result, str(_checkpoint(run_copy)), "corrupted")


@pytest.mark.slow
def test_console_train_on_folder_with_bad_files_lists_them(tmp_path):
    folder = tmp_path / "data"
    for name in ("a.wav", "b.wav", "d.wav"):
        _wav(folder / name, _tone())
    samples = _tone()
    samples[5] = np.nan
    _wav(folder / "c.wav", samples, subtype="FLOAT")  # alone in the valid split
    _not_audio(folder / "notes.wav")
    cut = _wav(folder / "e.wav", _tone(seconds=5.0))  # an interrupted copy: 5 s declared
    cut.write_bytes(cut.read_bytes()[:44 + 2 * 4])
    result = run_cli("train.py", f"--config={_config_file(tmp_path)}", f"--data={folder}",
                     f"--logdir={tmp_path / 'run'}", "--verbose=0")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "finished" in result.stdout
    assert re.search(r"notes\.wav: not a readable audio file", result.stderr), result.stderr
    assert re.search(r"c\.wav: [^\n]*NaN", result.stderr), result.stderr
    assert re.search(r"e\.wav: truncated: its header says 20,000 frames, the file holds 4 "
                     r"\(0\.00 s\), shorter than one example", result.stderr), result.stderr
    # Nothing but samplenet's own lines: warnings, progress on stdout, no library notes.
    assert all(line.startswith("warning: ") for line in error_lines(result.stderr)), result.stderr
