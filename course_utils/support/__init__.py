"""The support layer: what makes the core safe and repeatable, and what a student never needs
to open to learn how a ResNet is trained.

The checks run at the doors (``fit``, ``evaluate``, ``recipes.run``, ``DeviceLoader``, the
command line, ``sweep``); checkpoints and resume fingerprints, the download sources and the
Hub's verification, the command line and the sweeps' Optuna plumbing live here too.
"""
