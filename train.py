"""Train a samplenet model, e.g. python train.py --model samplernn_3tier --data my_audio/"""
from samplenet.cli.train import run

if __name__ == "__main__":
    run()
