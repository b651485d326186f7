"""Train a samplenet model: ``python train.py --model samplernn_3tier`` (``--help`` for flags)."""
from samplenet.cli.train import run

if __name__ == "__main__":
    run()
