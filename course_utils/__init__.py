"""Shared code for the compact-ResNet CIFAR-10 course.

Import the module you need, e.g. ``from course_utils import data, models, train``;
nothing heavy happens at package import.
"""

import warnings

__version__ = "0.1.0"

# tqdm.auto (fit's bar, Optuna's, the Hugging Face Hub's) warns "IProgress not found" in a
# Jupyter kernel without ipywidgets, then draws a text bar: all a lecture needs, so say nothing.
warnings.filterwarnings("ignore", message="IProgress not found")
