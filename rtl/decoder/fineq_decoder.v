// FineQ block decoder: one 7-byte block (56-bit word, spec section 6) -> 24 weights.
//
// block_i   = b0 | D << 8: index byte block_i[7:0] holds the code of pair p in
//             bits [2p+1:2p]; cluster j is block_i[6j+13:6j+8].
// weights_o = weight i in bits [3i+2:3i], 3-bit sign-magnitude {sign, mag[1:0]}.
//             2-bit fields widen to {sign, 1'b0, mag}; the zeroed position of a
//             code 1..3 cluster is 0. A negative zero (sign 1, magnitude 0) is
//             output as 3'b000, so every zero leaves the decoder as 000.
// Purely combinational.
`default_nettype none
`include "fineq_defs.vh"

module fineq_decoder (
  input  wire [`FINEQ_BLOCK_BITS-1:0]   block_i,
  output wire [`FINEQ_DECODED_BITS-1:0] weights_o
);

  genvar j;
  generate
    for (j = 0; j < 8; j = j + 1) begin : g_cluster
      wire [1:0] code = block_i[2*(j/2) +: 2];
      wire [5:0] f    = block_i[6*j+8 +: 6];
      reg  [8:0] raw;  // {w2, w1, w0} before negative-zero clearing

      always @* begin
        raw = 9'd0;
        case (code)
          2'd0:    raw = {f[5], 1'b0, f[4], f[3], 1'b0, f[2], f[1], 1'b0, f[0]};
          2'd1:    raw = {f[5:3], f[2:0], 3'd0};
          2'd2:    raw = {f[5:3], 3'd0, f[2:0]};
          default: raw = {3'd0, f[5:3], f[2:0]};
        endcase
      end

      genvar i;
      for (i = 0; i < 3; i = i + 1) begin : g_weight
        wire [2:0] w = raw[3*i +: 3];
        assign weights_o[9*j+3*i +: 3] = {w[2] & (|w[1:0]), w[1:0]};
      end
    end
  endgenerate

endmodule

`resetall
