"""Workstation-side training: Keras feature extractors, softmax and SVM heads.

Import-time is free of TensorFlow; the heavy modules import it when used.
"""
