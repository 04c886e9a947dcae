"""The accelerator's golden model (layer 3): its parameters and derived widths, the stream order, the cycle
model (written once), and the exact integer GEMM in fast and hardware order."""
