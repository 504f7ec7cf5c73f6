"""relaywatch's engine: config, contract, queries, rendering, validation, delivery."""

__version__ = "0.1.0"
