#!/usr/bin/env python3
"""Writes mel.onnx and vad.onnx, two small audio models whose inputs have symbolic dimensions beyond the
batch (issue 19): ModelGen compiles them once InputShape (--input-shape) fixes those sizes.

mel.onnx: a log-mel spectrogram front end, input 'audio' [batch, samples] (16 kHz), output
'logmel' [batch, frames, 40]. The short-time Fourier transform is a 1-D convolution with stride:
its 2 * 65 filters are a Hann window times the cos and sin rows of a 128-point DFT (hop 64), so
frames = (samples - 128) / 64 + 1. Power is re^2 + im^2, then a triangular mel filterbank (MatMul),
+1e-6 and Log.

vad.onnx: a voice-activity-like head, input 'features' [batch, sequence, 40], output 'speech'
[batch, sequence, 1]: a per-frame dense layer, ReLU, a second one and a Sigmoid.

Both are deterministic (seeded): run `python3 data/audio/make_mel.py` from the repository root to
write them again (needs the onnx and numpy packages: apt-get install python3-onnx python3-numpy).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE_RATE = 16000
N_FFT = 128
HOP = 64
N_BINS = N_FFT // 2 + 1
N_MELS = 40


def mel_filterbank():
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bin_hz = np.arange(N_BINS) * SAMPLE_RATE / N_FFT
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    fb = np.zeros((N_BINS, N_MELS), dtype=np.float32)
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        rising = (bin_hz - lo) / (mid - lo)
        falling = (hi - bin_hz) / (hi - mid)
        fb[:, m] = np.maximum(0.0, np.minimum(rising, falling))
    return fb


def make_mel():
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
    k = np.arange(N_BINS)[:, None]
    cos = np.cos(2 * np.pi * k * n / N_FFT) * window
    sin = -np.sin(2 * np.pi * k * n / N_FFT) * window
    # Conv weight [out_channels, in_channels, kernel]: the real filters, then the imaginary ones.
    dft = np.concatenate([cos, sin]).astype(np.float32)[:, None, :]
    inits = [
        numpy_helper.from_array(dft, "dft"),
        numpy_helper.from_array(mel_filterbank(), "mel_fb"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "channel_axis"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "re_start"),
        numpy_helper.from_array(np.array([N_BINS], dtype=np.int64), "re_end"),
        numpy_helper.from_array(np.array([2 * N_BINS], dtype=np.int64), "im_end"),
        numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["audio", "channel_axis"], ["mono"], name="to_channels"),
        helper.make_node("Conv", ["mono", "dft"], ["spectrum"], name="stft", strides=[HOP], kernel_shape=[N_FFT]),
        helper.make_node("Slice", ["spectrum", "re_start", "re_end", "channel_axis"], ["re"], name="real"),
        helper.make_node("Slice", ["spectrum", "re_end", "im_end", "channel_axis"], ["im"], name="imaginary"),
        helper.make_node("Mul", ["re", "re"], ["re2"], name="re_squared"),
        helper.make_node("Mul", ["im", "im"], ["im2"], name="im_squared"),
        helper.make_node("Add", ["re2", "im2"], ["power"], name="power"),
        helper.make_node("Transpose", ["power"], ["frames"], name="frames_first", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["frames", "mel_fb"], ["mel"], name="mel_filterbank"),
        helper.make_node("Add", ["mel", "eps"], ["mel_eps"], name="floor"),
        helper.make_node("Log", ["mel_eps"], ["logmel"], name="log"),
    ]
    graph = helper.make_graph(
        nodes, "log_mel_spectrogram",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", "samples"])],
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", "frames", N_MELS])],
        inits)
    return helper.make_model(graph, producer_name="modelgen make_mel.py", opset_imports=[helper.make_opsetid("", 13)])


def make_vad():
    rng = np.random.default_rng(19)
    inits = [
        numpy_helper.from_array((rng.standard_normal((N_MELS, 32)) * 0.2).astype(np.float32), "w1"),
        numpy_helper.from_array((rng.standard_normal(32) * 0.1).astype(np.float32), "b1"),
        numpy_helper.from_array((rng.standard_normal((32, 1)) * 0.3).astype(np.float32), "w2"),
        numpy_helper.from_array((rng.standard_normal(1) * 0.1).astype(np.float32), "b2"),
    ]
    nodes = [
        helper.make_node("MatMul", ["features", "w1"], ["h"], name="dense1"),
        helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"),
        helper.make_node("Relu", ["hb"], ["hr"], name="relu1"),
        helper.make_node("MatMul", ["hr", "w2"], ["o"], name="dense2"),
        helper.make_node("Add", ["o", "b2"], ["ob"], name="bias2"),
        helper.make_node("Sigmoid", ["ob"], ["speech"], name="speech"),
    ]
    graph = helper.make_graph(
        nodes, "voice_activity",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "sequence", N_MELS])],
        [helper.make_tensor_value_info("speech", TensorProto.FLOAT, ["batch", "sequence", 1])],
        inits)
    return helper.make_model(graph, producer_name="modelgen make_mel.py", opset_imports=[helper.make_opsetid("", 13)])


if __name__ == "__main__":
    for name, model in (("mel.onnx", make_mel()), ("vad.onnx", make_vad())):
        model.ir_version = 8
        onnx.checker.check_model(model)
        path = os.path.join(HERE, name)
        onnx.save(model, path)
        print(f"wrote {path} ({os.path.getsize(path):,} bytes)")
