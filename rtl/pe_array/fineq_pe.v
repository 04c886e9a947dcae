// Temporal-coding PE: holds one ACT_W-bit activation (input stationary) and
// outputs it on a cycle whose bitstream bit is 1, 0 otherwise. No multiplier.
`default_nettype none

module fineq_pe #(
  parameter integer ACT_W = 8
) (
  input  wire             clk_i,
  input  wire             rst_ni,
  input  wire             load_i,
  input  wire [ACT_W-1:0] act_i,
  input  wire             bit_i,
  output wire [ACT_W-1:0] out_o
);

  initial begin
    if (ACT_W < 2) begin
      $error("fineq_pe: ACT_W (%0d) must be at least 2", ACT_W);
      $finish;
    end
  end

  reg [ACT_W-1:0] act_q;
  wire [ACT_W-1:0] act_d = load_i ? act_i : act_q;

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) act_q <= {ACT_W{1'b0}};
    else         act_q <= act_d;
  end

  assign out_o = bit_i ? act_q : {ACT_W{1'b0}};

endmodule

`resetall
