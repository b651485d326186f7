"""Evaluate a trained run, e.g. python -m samplenet.evaluate --ckpt runs/RUN [--data held_out/]"""
from samplenet.cli.evaluate import run

if __name__ == "__main__":
    run()
