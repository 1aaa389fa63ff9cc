"""Weight statistics that predict how a tensor quantizes: spread, tails and outliers."""

from __future__ import annotations

import torch

OUTLIER_SIGMAS = 4.0  # a Gaussian puts 6.3e-5 of its mass beyond 4 sigma


def weight_stats(tensor: torch.Tensor) -> dict:
    """Mean, std, max |w|, excess kurtosis (tensor-wide and after per-row standardisation) and
    the share of weights beyond OUTLIER_SIGMAS row standard deviations.

    Rows are those the quantizers use (first dimension; a 1-D tensor is one row). The row
    standardised kurtosis is the one per-row quantizers see: it removes the spread of row
    scales, which alone makes a Gaussian tensor look heavy-tailed.
    """
    w = tensor.detach().double()
    rows = w.shape[0] if w.dim() > 1 else 1
    x = w.reshape(rows, -1)
    n = x.numel()
    mean = float(x.mean())
    std = float(x.std()) if n > 1 else 0.0
    out = {"mean": mean, "std": std, "sum_squares": float(x.square().sum()),
           "absmax": float(x.abs().max()) if n else 0.0,
           "excess_kurtosis": None, "row_excess_kurtosis": None, "outlier_share": None,
           "outlier_sigmas": OUTLIER_SIGMAS}
    if n < 4 or std == 0:
        return out
    z = (x - mean) / float(x.std(correction=0))
    out["excess_kurtosis"] = float(z.pow(4).mean() - 3.0)
    if x.shape[1] > 1:
        row_mean = x.mean(dim=1, keepdim=True)
        row_sd = x.std(dim=1, correction=0, keepdim=True)
        live = row_sd[:, 0] > 0
        if bool(live.any()):
            zr = (x[live] - row_mean[live]) / row_sd[live]
            out["row_excess_kurtosis"] = float(zr.pow(4).mean() - 3.0)
        # |w| beyond k row standard deviations (the quantizers' std: unbiased, about zero mean)
        sd = x.std(dim=1, keepdim=True)
        out["outlier_share"] = float((x.abs() > OUTLIER_SIGMAS * sd).double().mean())
    return out
