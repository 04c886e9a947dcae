"""The format (layer 1): the block codec, packing, the `QuantizedMatrix` container and `.fineq.npz` files.
It knows the spec only; nothing here imports a quantizer."""
