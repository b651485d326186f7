"""``python -m samplenet.evaluate --ckpt runs/<run>``: see ``samplenet.cli.evaluate``."""
from samplenet.cli.evaluate import run

if __name__ == "__main__":
    run()
