"""Generate audio from a trained run: ``python generate.py --ckpt runs/<run>`` (``--help``)."""
from samplenet.cli.generate import run

if __name__ == "__main__":
    run()
