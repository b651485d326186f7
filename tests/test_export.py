"""Tests of samplenet.export and its command line.

Tiny models with random weights are exported in-process (and a 1-step toy run by
``python -m samplenet.export``); ONE subprocess, in which importing samplenet is blocked, loads
every SavedModel with TensorFlow alone, calls its signatures and saves the outputs, which are
compared with the library's ``generate`` / ``encode`` / ``decode`` for the same arguments.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from samplenet import export as export_lib
from samplenet.cli import export as export_cli
from samplenet.loading import load_model
from samplenet.config import build_model
from samplenet.models.registry import EXTRA_FAMILIES_ENV
from samplenet.testing.toy_model import toy_config
from samplenet.training import trainer
from tests.cli.test_train_cli import error_lines

REPO = Path(__file__).resolve().parents[1]

# Runs in a fresh interpreter with only TensorFlow and NumPy: argv[1] is the plan (a JSON list
# of calls), outputs go to the working directory as <key>__<output>.npy, errors and the
# imported samplenet modules to summary.json.
LOADER = r"""
import importlib.abc, json, sys


class BlockSamplenet(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "samplenet":
            raise ImportError("samplenet is not available in this process")


sys.meta_path.insert(0, BlockSamplenet())
import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(2)
loaded, errors = {}, {}
for call in json.load(open(sys.argv[1])):
    if call["dir"] not in loaded:
        loaded[call["dir"]] = tf.saved_model.load(call["dir"])
    function = loaded[call["dir"]].signatures[call["signature"]]
    inputs = {name: tf.constant(np.load(path)) for name, path in call["inputs"].items()}
    try:
        outputs = function(**inputs)
    except tf.errors.InvalidArgumentError as error:
        errors[call["key"]] = error.message
        continue
    for name, value in outputs.items():
        np.save(f"{call['key']}__{name}.npy", value.numpy())
json.dump({"errors": errors,
           "samplenet_modules": [m for m in sys.modules if m.split(".")[0] == "samplenet"]},
          open("summary.json", "w"))
"""

NUM_SAMPLES, BATCH, TEMPERATURE = 40, 2, 0.9


def _models():
    """name -> a tiny built model with random weights (the linear AR model with a noise level)."""
    linear = build_model("linear_ar", order=3, q_levels=16, sample_rate=8000, target_len=16)
    linear.ensure_built()
    linear.predictor.kernel.assign(np.array([[[0.2]], [[-0.3]], [[0.9]]], np.float32))
    linear.residual_ema.assign(0.01)
    linear.residual_updates.assign(5.0)
    models = {
        "samplernn": build_model("samplernn", frame_sizes=[2, 4], dim=8, emb_size=4,
                                 rnn_type="lstm", mlp_layers=1, q_levels=16, seq_len=8,
                                 num_classes=2, sample_rate=8000),
        "wavenet": build_model("wavenet", dilations=[1, 2, 4], residual_channels=8,
                               dilation_channels=8, skip_channels=8, q_levels=16,
                               num_classes=3, sample_rate=8000, target_len=16),
        "linear_ar": linear,
        "soundstream": build_model("soundstream", channels=4, strides=[2, 2], latent_dim=6,
                                   num_quantizers=3, codebook_size=16, segment_samples=64,
                                   sample_rate=8000)}
    for model in models.values():
        model.ensure_built()
    return models


class _Plan:
    """The calls the loader makes and what the library gives for each (``expected``)."""

    def __init__(self, folder):
        self.folder, self.calls, self.expected = folder, [], {}

    def add(self, key, out_dir, signature, expected=None, **inputs):
        paths = {}
        for name, value in inputs.items():
            paths[name] = str(self.folder / f"in_{key}_{name}.npy")
            np.save(paths[name], value)
        self.calls.append({"key": key, "dir": str(out_dir), "signature": signature,
                           "inputs": paths})
        self.expected[key] = expected

    def generate(self, key, model, out_dir, seed, condition=None, library_condition=None,
                 num_samples=NUM_SAMPLES, valid=True, chunk_samples=16000):
        inputs = dict(num_samples=np.int32(num_samples), batch_size=np.int32(BATCH),
                      temperature=np.float32(TEMPERATURE), seed=np.int64(seed))
        if condition is not None:
            inputs["condition"] = np.asarray(condition, np.int32)
        expected = None
        if valid:
            codes, audio = model.generate(num_samples, batch_size=BATCH,
                                          temperature=TEMPERATURE, seed=seed,
                                          condition=library_condition,
                                          chunk_samples=chunk_samples)
            expected = {"codes": codes, "audio": audio}
        self.add(key, out_dir, "generate", expected, **inputs)


def _codec_calls(plan, model, out_dir):
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, (BATCH, 37)).astype(np.float32)
    for count in (2, 3):
        codes = model.encode(audio, count).numpy()
        plan.add(f"encode_{count}", out_dir, "encode", {"codes": codes}, audio=audio,
                 num_quantizers=np.int32(count))
        plan.add(f"decode_{count}", out_dir, "decode", {"audio": model.decode(codes).numpy()},
                 codes=codes)
    plan.add("encode_bad", out_dir, "encode", audio=audio, num_quantizers=np.int32(4))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A run directory of a 1-step toy training run."""
    run = tmp_path_factory.mktemp("toy") / "run"
    trainer.train(toy_config(steps_per_epoch=1), run, verbose=0)
    return run


@pytest.fixture(scope="module")
def exported(tmp_path_factory, toy_run):
    """Export everything, run the loader once; returns a dict of what the tests check."""
    root = tmp_path_factory.mktemp("export")
    run = toy_run
    cli_out = root / "cli_export"
    cli = subprocess.Popen(  # the CLI export runs while this process exports the others
        [sys.executable, "-m", "samplenet.export", f"--ckpt={run}", f"--out={cli_out}"],
        cwd=REPO, env=_env(True), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    models, dirs = _models(), {}
    for name, model in models.items():
        dirs[name] = export_lib.export(model, root / name)
    cli_stdout, cli_stderr = cli.communicate(timeout=300)

    plan = _Plan(root)
    # The library in chunks of 16 samples, the export in one loop.
    plan.generate("samplernn", models["samplernn"], dirs["samplernn"], 7, [1, 0], [1, 0],
                  chunk_samples=16)
    plan.generate("wavenet", models["wavenet"], dirs["wavenet"], 7, [2, 0], [2, 0])
    plan.generate("wavenet_broadcast_big_seed", models["wavenet"], dirs["wavenet"], 2**40 + 5,
                  [1], 1)
    plan.generate("wavenet_negative_seed", models["wavenet"], dirs["wavenet"], -3, [0, 1],
                  [0, 1], chunk_samples=16)
    plan.generate("wavenet_bad_condition", models["wavenet"], dirs["wavenet"], 7, [3, 0],
                  valid=False)
    plan.generate("linear_ar", models["linear_ar"], dirs["linear_ar"], 11)
    plan.generate("linear_ar_bad_length", models["linear_ar"], dirs["linear_ar"], 11,
                  num_samples=0, valid=False)
    _codec_calls(plan, models["soundstream"], dirs["soundstream"])
    if cli.returncode == 0:
        plan.generate("cli_toy", load_model(run), cli_out, 5)
    (root / "plan.json").write_text(json.dumps(plan.calls))
    (root / "loader.py").write_text(LOADER)
    loader = subprocess.run([sys.executable, str(root / "loader.py"), str(root / "plan.json")],
                            cwd=root, capture_output=True, text=True, timeout=600,
                            env=_env(False))
    assert loader.returncode == 0, loader.stderr
    outputs = {key: {path.name.split("__")[1][:-4]: np.load(path)
                     for path in root.glob(f"{key}__*.npy")} for key in plan.expected}
    return {"root": root, "run": run, "dirs": dirs, "models": models, "outputs": outputs,
            "expected": plan.expected, "summary": json.loads((root / "summary.json").read_text()),
            "cli": (cli.returncode, cli_stdout, cli_stderr), "cli_out": cli_out}


def _env(find_samplenet):
    """The subprocess environment: with the repository and the toy family for the command
    line, without PYTHONPATH for the loader (which also blocks importing samplenet)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)
    if find_samplenet:
        env.update({EXTRA_FAMILIES_ENV: "samplenet.testing.toy_model", "PYTHONPATH": str(REPO)})
    return env


def _assert_outputs_equal(exported, key):
    """Codes and levels exactly equal; audio equal (the same float32 ops) to 1e-6."""
    got, expected = exported["outputs"][key], exported["expected"][key]
    assert set(got) == set(expected), (key, exported["summary"]["errors"].get(key))
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, (key, name)
        if value.dtype.kind == "f":
            np.testing.assert_allclose(got[name], value, rtol=0, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got[name], value, err_msg=key)


@pytest.mark.slow
def test_export_loader_process_never_imports_samplenet(exported):
    assert exported["summary"]["samplenet_modules"] == []


@pytest.mark.slow
@pytest.mark.parametrize("key", ["samplernn", "wavenet", "wavenet_broadcast_big_seed",
                                 "wavenet_negative_seed", "linear_ar"])
def test_export_generate_equals_library_generate(exported, key):
    _assert_outputs_equal(exported, key)
    assert exported["outputs"][key]["codes"].shape == (BATCH, NUM_SAMPLES)


@pytest.mark.slow
def test_export_generate_seeds_give_different_samples(exported):
    outputs = exported["outputs"]
    assert not np.array_equal(outputs["wavenet"]["codes"],
                              outputs["wavenet_negative_seed"]["codes"])


@pytest.mark.slow
@pytest.mark.parametrize("key", ["encode_2", "encode_3", "decode_2", "decode_3"])
def test_export_codec_signatures_equal_library(exported, key):
    _assert_outputs_equal(exported, key)


@pytest.mark.slow
@pytest.mark.parametrize("key, words", [("wavenet_bad_condition", "condition ids must be < 3"),
                                        ("linear_ar_bad_length", "num_samples must be > 0"),
                                        ("encode_bad", "num_quantizers must be in [1, 3]")])
def test_export_signature_bad_input_raises_invalid_argument(exported, key, words):
    assert words in exported["summary"]["errors"][key]


@pytest.mark.slow
def test_export_manifest_gives_family_units_and_signatures(exported):
    manifest = export_lib.read_manifest(exported["dirs"]["wavenet"])
    assert manifest["family"] == "wavenet" and manifest["kind"] == "autoregressive"
    assert (manifest["sample_rate"], manifest["q_levels"], manifest["quantization"],
            manifest["num_classes"]) == (8000, 16, "mu-law", 3)
    inputs = manifest["signatures"]["generate"]["inputs"]
    assert inputs["seed"] == {"dtype": "int64", "shape": []}
    assert inputs["condition"] == {"dtype": "int32", "shape": [None]}
    assert manifest["signatures"]["generate"]["outputs"]["codes"]["dtype"] == "int32"
    assert "condition" not in export_lib.read_manifest(
        exported["dirs"]["linear_ar"])["signatures"]["generate"]["inputs"]
    codec = export_lib.read_manifest(exported["dirs"]["soundstream"])
    assert codec["kind"] == "codec" and sorted(codec["signatures"]) == ["decode", "encode"]
    assert (codec["hop_samples"], codec["frame_rate"], codec["num_quantizers"]) == (4, 2000.0, 3)
    assert codec["bitrate_kbps"] == pytest.approx(2000 * 3 * 4 / 1000)


@pytest.mark.slow
def test_cli_export_writes_a_savedmodel_equal_to_library(exported):
    returncode, stdout, stderr = exported["cli"]
    assert returncode == 0, stderr
    assert error_lines(stderr) == []
    assert str(exported["cli_out"]) in stdout and "generate" in stdout
    assert export_lib.read_manifest(exported["cli_out"])["family"] == "toy_ar"
    _assert_outputs_equal(exported, "cli_toy")
    assert not [p for p in exported["root"].iterdir() if p.name.endswith(".partial")]


# ---------------------------------------------------------------- failures, in-process
def test_export_existing_non_empty_out_raises_and_keeps_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not an empty folder"):
        export_lib.export(build_model("toy_ar"), out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_export_failed_save_leaves_nothing_behind(tmp_path):
    def broken_save(*args, **kwargs):
        Path(args[1], "saved_model.pb").write_text("half")
        raise OSError("disk full")

    with mock.patch.object(tf.saved_model, "save", broken_save):
        with pytest.raises(OSError, match="disk full"):
            export_lib.export(build_model("toy_ar"), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_export_into_empty_folder_replaces_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export_lib.export(build_model("toy_ar"), out)
    assert (out / "saved_model.pb").is_file() and (out / export_lib.MANIFEST).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _run_main(capsys, *argv):
    """Run the wrapped ``main`` of the export command line in-process."""
    flag_values = flags.FlagValues()
    export_cli.define_flags(flag_values)
    flag_values(["export", *argv])
    with mock.patch.object(export_cli, "FLAGS", flag_values):
        code = export_cli.main(["export"])
    return code, error_lines(capsys.readouterr().err)


def _assert_one_line(code, lines, *words):
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(word in lines[0] for word in words), lines[0]


def test_cli_export_missing_ckpt_is_one_line_error(tmp_path, capsys):
    code, lines = _run_main(capsys, f"--ckpt={tmp_path / 'nowhere'}", f"--out={tmp_path / 'o'}")
    _assert_one_line(code, lines, "nowhere", "does not exist")
    assert not (tmp_path / "o").exists()


def test_cli_export_corrupt_ckpt_is_one_line_error(toy_run, tmp_path, capsys):
    run = shutil.copytree(toy_run, tmp_path / "run")
    for data_file in run.glob("checkpoints/*/ckpt.data-*"):
        data_file.write_bytes(data_file.read_bytes()[:20])
    code, lines = _run_main(capsys, f"--ckpt={run}", f"--out={tmp_path / 'o'}")
    _assert_one_line(code, lines, "corrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_cli_export_non_empty_out_is_one_line_error(toy_run, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "x").write_text("")
    code, lines = _run_main(capsys, f"--ckpt={toy_run}", f"--out={tmp_path / 'o'}")
    _assert_one_line(code, lines, str(tmp_path / "o"), "not an empty folder")


def test_cli_export_unwritable_out_is_one_line_error(toy_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, lines = _run_main(capsys, f"--ckpt={toy_run}", f"--out={blocker / 'o'}")
    _assert_one_line(code, lines, "a_file")
