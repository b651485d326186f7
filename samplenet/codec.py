"""Encode, decode and evaluate with a trained codec: python -m samplenet.codec --help"""
from samplenet.cli.codec import run

if __name__ == "__main__":
    run()
