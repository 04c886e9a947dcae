"""Quantizers (layer 2): FineQ's modes and the baselines, one algorithm per module, one registry
(:mod:`fineq.quant.registry`) with the one entry point :func:`~fineq.quant.registry.quantize`."""
