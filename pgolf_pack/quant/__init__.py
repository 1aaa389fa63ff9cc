"""Quantizers shared by the packer and quantization-aware training.

    spec = QuantSpec.parse("int6:std12.85")
    q = quantize(w, spec)          # symbols + per-row scales (exactly as stored)
    w_hat = dequantize(q)          # float32, what the artifact holds
    w_ste = fake_quantize(w, spec) # the same forward with a straight-through gradient
"""

from pgolf_pack.quant.spec import QuantSpec
from pgolf_pack.quant.uniform import Quantized, RowStats, dequantize, fake_quantize, quantize

__all__ = ["QuantSpec", "Quantized", "RowStats", "dequantize", "fake_quantize", "quantize"]
