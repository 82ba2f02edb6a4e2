"""hw8: autoencoders and anomaly detection for ML 2023 Spring HW8."""

__version__ = "0.1.0"
