"""A Keras 3 twin of Jazbat-Net: the paper's toolchain, as the reference our exports must beat.

Same layers and parameter count as ``jazbat_jax.model.JazbatNet`` (28,360 for F=1, K=6, C=6):
Bidirectional(GRU(32, reset_after=True)) → BatchNormalization(ε=1e-3) → 3 multi-scale modules
(1×1→1×5 and 1×1→1×3 branches, ReLU, summed; 1×1 aggregation + 1×1 projection, ReLU) → 1×1
reduction (K, linear) → global average pooling → Dense(C, softmax). ``copy_flax_weights`` loads a
Flax variable tree into it, so the twin also checks that our model *is* the Keras model.

Converted to TFLite the way a Keras user would (builtin ops, batch 1 fixed, variables frozen):
TFLite unrolls nothing and keeps Keras' GRU as a generic WHILE loop per direction.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


def build_keras_twin(input_dim: int = 1, num_classes: int = 6, reduce_filters: int = 6, window: int = 256,
                     gru_units: int = 32, branch_width: int = 10, module_width: int = 64, num_modules: int = 3):
    """The Keras 3 model (uncompiled). Layer names follow the Flax parameter paths."""
    import keras
    from keras import layers

    x_in = keras.Input((window, input_dim), name="x")
    h = layers.Bidirectional(layers.GRU(gru_units, return_sequences=True, reset_after=True), name="bigru")(x_in)
    h = layers.BatchNormalization(momentum=0.99, epsilon=1e-3, name="batchnorm")(h)
    for i in range(1, num_modules + 1):
        branches = []
        for j, k in ((1, 5), (2, 3)):
            b = layers.Conv1D(branch_width, 1, padding="same", activation="relu", name=f"module_{i}_b{j}_1x1")(h)
            b = layers.Conv1D(branch_width, k, padding="same", activation="relu", name=f"module_{i}_b{j}_1x{k}")(b)
            branches.append(b)
        merged = layers.Add(name=f"module_{i}_sum")(branches)
        aggregated = layers.Conv1D(module_width, 1, padding="same", name=f"module_{i}_aggregate")(merged)
        projected = layers.Conv1D(module_width, 1, padding="same", name=f"module_{i}_project")(h)
        h = layers.ReLU(name=f"module_{i}_relu")(layers.Add(name=f"module_{i}_residual")([aggregated, projected]))
    h = layers.Conv1D(reduce_filters, 1, padding="same", name="reduce")(h)
    z = layers.GlobalAveragePooling1D(name="gap")(h)
    out = layers.Dense(num_classes, activation="softmax", name="head")(z)
    return keras.Model(x_in, out, name="jazbat_net_keras_twin")


def copy_flax_weights(twin, variables: dict) -> None:
    """Set the twin's weights from a Flax ``{'params', 'batch_stats'}`` tree of the same shape."""
    p, s = variables["params"], variables["batch_stats"]
    bigru = twin.get_layer("bigru")
    for layer, flax in ((bigru.forward_layer, p["bigru"]["forward"]), (bigru.backward_layer, p["bigru"]["backward"])):
        layer.set_weights([np.asarray(flax["kernel"]), np.asarray(flax["recurrent_kernel"]), np.asarray(flax["bias"])])
    bn = p["batchnorm"]
    twin.get_layer("batchnorm").set_weights([np.asarray(a) for a in (bn["scale"], bn["bias"],
                                             s["batchnorm"]["mean"], s["batchnorm"]["var"])])
    for layer in twin.layers:
        if layer.name.startswith("module_") and layer.__class__.__name__ == "Conv1D":
            module, conv = layer.name.split("_", 2)[:2], layer.name.split("_", 2)[2]
            flax = p["_".join(module)][conv]
            layer.set_weights([np.asarray(flax["kernel"]), np.asarray(flax["bias"])])
    twin.get_layer("reduce").set_weights([np.asarray(p["reduce"]["kernel"]), np.asarray(p["reduce"]["bias"])])
    twin.get_layer("head").set_weights([np.asarray(p["head"]["kernel"]), np.asarray(p["head"]["bias"])])


def twin_to_tflite(twin, batch_size: int = 1) -> bytes:
    """TFLite FP32 with builtin ops only, fixed batch, through a concrete function (variables frozen)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = tf.TensorSpec((batch_size, *twin.input_shape[1:]), tf.float32, name="x")
    fn = tf.function(lambda x: twin(x, training=False), input_signature=[spec], autograph=False)
    # Keras 3 variables would stay resource variables (READ_VARIABLE ops) without freezing.
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()
