"""Entropy and Shannon-floor analysis of quantized weights (the pgolf-analyze command)."""
