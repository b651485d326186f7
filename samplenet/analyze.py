"""Analyse data or a model, e.g. python -m samplenet.analyze --data my_audio/ [--suggest wavenet
--out config.json] [--plots figures/], or --model wavenet (see samplenet.analysis.__main__)."""
from samplenet.analysis.__main__ import run

if __name__ == "__main__":
    run()
