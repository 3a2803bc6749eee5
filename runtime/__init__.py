"""Device-side runtime: frame sources, face detection, classification backends.

Nothing here imports TensorFlow, Keras, scikit-learn or matplotlib; a vendor
inference library is imported only inside the backend module that needs it.
"""
