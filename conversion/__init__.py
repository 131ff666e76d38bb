"""Export and profiling, built on jazbat_jax (which never imports this package): jax2tf → TFLite, native ONNX,
parity gates, manifests, latency and deployment profiles (`jazbat export`, `jazbat profile`)."""

# The export formats (here, so that the command line can list them without loading TensorFlow).
FORMATS = ("tflite", "tflite-int8", "tflite-full-int8", "onnx", "saved_model", "onnx-tf2onnx")
# "all": every format worth deploying. Not the slow tf2onnx path, nor full INT8, whose unrolled 256-step INT8
# GRU loses a trained model (docs/export.md): both only on request.
ALL_FORMATS = ("tflite", "tflite-int8", "onnx", "saved_model")
