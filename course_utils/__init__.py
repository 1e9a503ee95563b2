"""Shared code for the compact-ResNet CIFAR-10 course.

Import the module you need, e.g. ``from course_utils import data, models, train``;
nothing heavy happens at package import.
"""

__version__ = "0.1.0"
