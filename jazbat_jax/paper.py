"""Figures as *published* in the Jazbat-Net paper (Imran et al., IEEE IoT-J 2026).

These are quotations, kept only to be printed next to our own measurements and to flag
where the paper is wrong. Nothing in the package computes a result from them.
"""

PAPER = "Imran et al., IEEE IoT Journal 2026, doi:10.1109/JIOT.2026.3666469"
SOTA = "[9] Imran et al., Appl. Sci. 13(8):4728, 2023"

# Tables III (MACs) and V (parameters, FP32 size), per input width.
JAZBAT_PUBLISHED = {
    "1d": {"macs": 6.96e6, "params": 28.36e3, "fp32_kb": 110},
    "3d": {"macs": 7.05e6, "params": 28.55e3, "fp32_kb": 113},
    "6d": {"macs": 7.20e6, "params": 29.13e3, "fp32_kb": 116},
}
SOTA_PUBLISHED = {
    "1d": {"macs": 157.88e6, "params": 754e3, "fp32_mb": 3.0},
    "3d": {"macs": 158.14e6, "params": 756e3, "fp32_mb": 3.0},
    "6d": {"macs": 158.53e6, "params": 757e3, "fp32_mb": 3.1},
}

# On-device: Xiaomi 13T, TFLite FP32 with XNNPACK, input 1×256×1 (Sec. IV).
ON_DEVICE = {
    "jazbat": {"tflite_mb": 0.158, "median_ms": 90.96, "mean_ms": 90.37, "sd_ms": 7.94},
    "sota": {"tflite_mb": 3.11, "median_ms": 111.86, "mean_ms": 113.16, "sd_ms": 9.72},
}

# Table IV (F=1, K=6, C=6): per-block parameters and the activation-memory column (floats).
TABLE_IV = {
    "bigru_params": 6720,
    "batchnorm_params": (128, 256),  # trainable, total
    "modules_params": 20952,
    "reduce_params": 390,
    "head_params": 42,
    "activation_floats": {"bigru": 16384, "branches": 10240, "reduce": 256, "head": 6, "sum": 26886},
    "peak_activation_floats": 54272,
}

# Table VI: accuracy %, SEECS emotions, 6 classes, by (input, pretraining). The split is not stated
# (probably a random segment split); the best, 95.36, is 1D |a| pretrained on phone WISDM.
TABLE_VI = {
    ("6d", "none"): 75.38, ("6d", "watch"): 75.04, ("6d", "phone"): 67.29,
    ("3d", "none"): 86.77, ("3d", "watch"): 82.66, ("3d", "phone"): 81.96,
    ("1d", "none"): 85.10, ("1d", "watch"): 90.62, ("1d", "phone"): 95.36,
}
