"""Generate audio from a trained run, e.g. python generate.py --ckpt runs/RUN --seconds 4"""
from samplenet.cli.generate import run

if __name__ == "__main__":
    run()
