"""Export and profiling, built on jazbat_jax (which never imports this package): jax2tf → TFLite, native ONNX,
parity gates, manifests, latency and deployment profiles (`jazbat export`, `jazbat profile`)."""

# The export formats (here, so that the command line can list them without loading TensorFlow).
FORMATS = ("tflite", "tflite-int8", "onnx", "saved_model", "onnx-tf2onnx")
ALL_FORMATS = ("tflite", "tflite-int8", "onnx", "saved_model")  # "all": every format but the slow tf2onnx path
