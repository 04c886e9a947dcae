// Temporal encoder (spec section 8) for one weight vector of ROWS weights.
//
// Holds the vector (3-bit sign-magnitude per row) and a 2-bit cycle counter
// cnt. Row r's bitstream bit on cycle cnt is (cnt < |w_r|): a thermometer code,
// one comparator per weight. Early termination: the vector lasts
// max(1, max_r |w_r|) cycles; last_o is high on its final cycle. A vector whose
// magnitudes are all 0 lasts one cycle with every bit 0.
// load_i latches vec_i and restarts the count; step_i advances the count.
`default_nettype none

module fineq_temporal_encoder #(
  parameter integer ROWS = 64
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire              load_i,
  input  wire [ROWS*3-1:0] vec_i,
  input  wire              step_i,
  output reg  [ROWS-1:0]   bits_o,
  output reg  [ROWS-1:0]   signs_o,
  output wire              first_o,
  output wire              last_o
);

  initial begin
    if (ROWS < 1) begin
      $error("fineq_temporal_encoder: ROWS (%0d) must be positive", ROWS);
      $finish;
    end
  end

  reg [ROWS*3-1:0] vec_q, vec_d;
  reg [1:0]        cnt_q, cnt_d;

  always @* begin
    vec_d = vec_q;
    cnt_d = cnt_q;
    if (load_i) begin
      vec_d = vec_i;
      cnt_d = 2'd0;
    end else if (step_i) begin
      cnt_d = cnt_q + 2'd1;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      vec_q <= {ROWS*3{1'b0}};
      cnt_q <= 2'd0;
    end else begin
      vec_q <= vec_d;
      cnt_q <= cnt_d;
    end
  end

  // Bitstreams and the vector's largest magnitude.
  reg any1, any2, any3;
  integer r;
  always @* begin
    bits_o  = {ROWS{1'b0}};
    signs_o = {ROWS{1'b0}};
    any1 = 1'b0;
    any2 = 1'b0;
    any3 = 1'b0;
    for (r = 0; r < ROWS; r = r + 1) begin
      bits_o[r]  = (cnt_q < vec_q[3*r +: 2]);
      signs_o[r] = vec_q[3*r+2];
      any1 = any1 | vec_q[3*r];
      any2 = any2 | vec_q[3*r+1];
      any3 = any3 | (vec_q[3*r] & vec_q[3*r+1]);
    end
  end

  // tmax = 3 if any3, 2 if any2, 1 if any1, else 0; last when cnt+1 >= max(tmax, 1).
  assign last_o  = any3 ? (cnt_q == 2'd2) : (any2 ? (cnt_q == 2'd1) : 1'b1);
  assign first_o = (cnt_q == 2'd0);

endmodule

`resetall
