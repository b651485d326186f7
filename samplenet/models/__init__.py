"""samplenet's models, one per module, and the family registry (``registry``); presets and
configurations are ``samplenet.config``."""
