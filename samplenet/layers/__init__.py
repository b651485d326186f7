"""samplenet's Keras layers, one public layer per module."""
