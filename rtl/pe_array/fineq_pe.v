// Temporal-coding PE: holds one ACT_W-bit activation (input stationary) and
// outputs it on a cycle whose bitstream bit is 1, 0 otherwise. No multiplier.
// CLOCK_GATE = 1: the activation register is clocked through a clock gate
// enabled by load_i (it holds its value on every other cycle without being
// clocked); CLOCK_GATE = 0: a plain register with a load multiplexer.
`default_nettype none

module fineq_pe #(
  parameter integer ACT_W      = 8,
  parameter integer CLOCK_GATE = 1
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
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("fineq_pe: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
  end

  wire [ACT_W-1:0] act_q;

  fineq_en_reg #(.WIDTH(ACT_W), .CLOCK_GATE(CLOCK_GATE)) u_act (
    .clk_i (clk_i),
    .rst_ni(rst_ni),
    .en_i  (load_i),
    .d_i   (act_i),
    .q_o   (act_q)
  );

  assign out_o = bit_i ? act_q : {ACT_W{1'b0}};

endmodule

`resetall
