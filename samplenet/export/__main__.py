"""Export a trained model for serving: python -m samplenet.export --ckpt runs/RUN --out DIR"""
from samplenet.cli.export import run

if __name__ == "__main__":
    run()
