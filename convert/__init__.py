"""Workstation-side conversion: Keras model -> INT8 TFLite / ONNX artifacts with manifests, parity-checked."""
