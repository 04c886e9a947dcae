// FineQ format constants and derived widths, shared by every RTL file (`include "fineq_defs.vh").
// The same numbers on the Python side: fineq.format.codec (BLOCK_BITS, BLOCK_WEIGHTS, ...) and
// fineq.engine.config (sum_w, bpv); tests/test_rtl_sources.py holds the two equal.
`ifndef FINEQ_DEFS_VH
`define FINEQ_DEFS_VH

// One packed block (spec section 4): 56 bits, 24 weights in 8 clusters of 3.
`define FINEQ_BLOCK_BITS     56
`define FINEQ_BLOCK_WEIGHTS  24
`define FINEQ_CLUSTERS       8
// A decoded weight is 3-bit sign-magnitude {sign, |w|[1:0]}; a decoded block is 24 of them.
`define FINEQ_W_BITS         3
`define FINEQ_DECODED_BITS   (`FINEQ_BLOCK_WEIGHTS * `FINEQ_W_BITS)
// Activations are int8.
`define FINEQ_ACT_W          8

// Levels of a binary tree over n leaves (at least 1).
`define FINEQ_LEVELS(n)      (((n) > 1) ? $clog2(n) : 1)
// Width of a column sum of n sign-applied act_w-bit terms: act_w + 1 (so -(-2^(act_w-1)) fits) + LEVELS(n).
`define FINEQ_SUM_W(act_w, n) ((act_w) + 1 + `FINEQ_LEVELS(n))
// The power-of-two PE (CODING = 2, a variant outside the spec) passes x, 2x or 4x: terms up to POW2_SHIFT bits
// wider, so its column sums are `FINEQ_SUM_W(act_w + `FINEQ_POW2_SHIFT, n) wide.
`define FINEQ_POW2_SHIFT     2
// Width of one MAC product: an act_w-bit activation times a w_w-bit sign-magnitude weight,
// |act * w| <= 2^(act_w-1) * (2^(w_w-1) - 1) < 2^(act_w+w_w-2), signed.
`define FINEQ_MAC_PROD_W(act_w, w_w) ((act_w) + (w_w) - 1)
// Width of the MAC array's partial sums over n such products.
`define FINEQ_MAC_PSUM_W(act_w, w_w, n) (`FINEQ_MAC_PROD_W(act_w, w_w) + `FINEQ_LEVELS(n))
// Blocks per weight beat: a K tile of rows weights starts 0, 8 or 16 weights into its first block.
`define FINEQ_BPV(rows)      (((rows) + 16 + `FINEQ_BLOCK_WEIGHTS - 1) / `FINEQ_BLOCK_WEIGHTS)

`endif
