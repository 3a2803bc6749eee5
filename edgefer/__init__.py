"""edgefer: facial emotion recognition for edge devices.

The distribution is split the way the work flows: ``edgefer.train`` (workstation,
Keras), ``edgefer.convert`` (workstation, TFLite/ONNX/TensorRT) and
``edgefer.runtime`` (device; numpy + OpenCV + one inference backend).
Importing this package does no work and pulls in no framework.
"""

__version__ = "0.1.0"
