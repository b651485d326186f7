"""Tiny multi-worker training runs for the tests of ``--strategy multiworker``.

``python -m samplenet.testing.multiworker DATA_DIR RUNS_DIR OUT_JSON`` (with ``TF_CONFIG``
set) trains the tiny SampleRNN and WaveNet of ``tiny_configs`` one after the other under
``MultiWorkerMirroredStrategy``, into ``RUNS_DIR/<name>``, and writes ``{name: history}`` to
``OUT_JSON``. One process trains both models because importing TensorFlow is the slow part.

``identical_files_folder`` writes the data: copies of one clip, one window long, so every batch
is the same whichever files a worker's shard holds and wherever a window is drawn; a multi-worker
run then sees the same global batches as a single-process run.
"""
import json
import sys
from pathlib import Path

import numpy as np

from samplenet import audio as audio_io

SAMPLE_RATE = 4000
NUM_FILES = 8
# WaveNet of tiny_configs: receptive field 1 + (1 + 2 + 4) + 1 = 9 samples, plus 32 targets.
CLIP_SAMPLES = 41


def tiny_configs(data_dir, *, steps_per_epoch=2, epochs=1):
    """``{"samplernn": config, "wavenet": config}``: dims 8-16, global batch 4, SGD (plain
    gradient steps, so a wrongly scaled all-reduced gradient shows in the loss), no validation
    split (the data has no held-out files), a 10 ms preview after each epoch."""
    data = {"spec": str(data_dir), "valid_fraction": 0.0, "test_fraction": 0.0}
    train = {"optimizer": "sgd", "learning_rate": 0.5, "clipnorm": 0.0, "batch_size": 4,
             "epochs": epochs, "steps_per_epoch": steps_per_epoch, "early_stopping_patience": 0,
             "generate_every": 1, "generate_seconds": 0.01, "seed": 3}
    return {
        "samplernn": {"family": "samplernn", "frame_sizes": [4], "dim": 16, "emb_size": 8,
                      "mlp_layers": 2, "q_levels": 16, "seq_len": 8, "sample_rate": SAMPLE_RATE,
                      "data": {**data, "example_seconds": 1.0}, "train": train},
        "wavenet": {"family": "wavenet", "num_stacks": 1, "num_layers": 3,
                    "residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
                    "q_levels": 16, "target_len": CLIP_SAMPLES - 9, "sample_rate": SAMPLE_RATE,
                    "data": data, "train": train},
    }


def identical_files_folder(folder):
    """Write ``NUM_FILES`` identical WAV files of ``CLIP_SAMPLES`` samples into ``folder``."""
    rng = np.random.default_rng(0)
    clip = (0.5 * np.sin(np.arange(CLIP_SAMPLES) * 0.3)
            + 0.2 * rng.uniform(-1, 1, CLIP_SAMPLES)).astype(np.float32)
    for index in range(NUM_FILES):
        audio_io.save(Path(folder) / f"clip-{index:02d}.wav", clip, SAMPLE_RATE)
    return Path(folder)


def main(argv):
    from samplenet.training import trainer  # TensorFlow starts here

    data_dir, runs_dir, out_json = argv[1:]
    histories = {name: trainer.train(config, Path(runs_dir) / name, strategy="multiworker",
                                     verbose=0)
                 for name, config in tiny_configs(data_dir).items()}
    Path(out_json).write_text(json.dumps(
        {name: {key: [float(v) for v in values] for key, values in history.items()}
         for name, history in histories.items()}), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
