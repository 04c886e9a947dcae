// FineQ GEMM engine: Y = V @ X for FineQ-packed weights V [M, K] and int8 X [K, N <= COLS].
//
// Streams (valid/ready; a beat moves when valid && ready):
//   act  : one row of X per beat, lane c = X[k, c] in act_data_i[8c +: 8] (lanes >= N are 0)
//   wgt  : one weight beat = BPV packed blocks of one row (block b in wgt_data_i[56b +: 56])
//   out  : one row of Y per beat, lane c = Y[m, c] in out_data_o[ACC_W*c +: ACC_W]
// Order (docs/microarchitecture.md, golden/fineq/engine.py):
//   for each chunk of PSUM_DEPTH rows of M, for each K tile t of ROWS weights:
//     LOAD   min(ROWS, K - ROWS*t) activation beats (rows ROWS*t.. of X)
//     STREAM one weight beat per row m of the chunk (blocks floor(ROWS*t/24)..+BPV-1)
//     DRAIN  until the last vector of the tile has been accumulated
//   FLUSH until the last output row has been taken.
// Partial sums of the chunk live in the psum buffer between K tiles; the last
// tile's sums go out as output rows, in order of m.
// Pipeline: D (decode register) -> T (temporal encoder, PE array, adder trees)
// -> A (accumulate: the trees' sums are registered at the end of T, so the
// column accumulators add them one cycle later). A output row that cannot be
// handed over stalls A, and A stalls T.
// CODING = 0: the paper's thermometer temporal coding (a vector takes
// max(1, max |w|) cycles); CODING = 1: binary-weighted coding, a variant beyond
// the paper (|w| = b0 + 2*b1: 2 cycles if some |w| >= 2, else 1; the
// accumulators add the doubled sums on the b1 cycle). Same Y, bit for bit.
// CODING = 2: the power-of-two datapath, a variant outside the spec that runs the pow2 codebook's levels
// (field magnitudes 1, 2, 3 stand for 1, 2, 4; docs/format.md): one cycle per vector, each PE passing 0, x, 2x
// or 4x (fineq_pe_array POW2 = 1), column sums 2 bits wider. |Y| <= 512 K < 2^31 for K < 2^22.
// CLOCK_GATE = 1 clock-gates the PE activation registers, the encoder's vector
// register, the tree-sum registers and the column accumulators.
// CLOCK_GATE changes no bit and no cycle: simulators run CLOCK_GATE = 0 (docs/microarchitecture.md).
// start_i (while idle) latches cfg_m_i and cfg_k_i; M = 0 or K = 0 is refused
// with cfg_err_o. cycles_o counts the cycles of the last run (busy cycles).
`default_nettype none
`include "fineq_defs.vh"

module fineq_gemm_engine #(
  parameter integer ROWS       = 64,
  parameter integer COLS       = 64,
  parameter integer ACC_W      = 32,
  parameter integer PSUM_DEPTH = 256,
  parameter integer M_W        = 16,
  parameter integer K_W        = 22,
  parameter integer CLOCK_GATE = 1,
  parameter integer CODING     = 0,
  parameter integer BPV        = `FINEQ_BPV(ROWS)
) (
  input  wire                  clk_i,
  input  wire                  rst_ni,
  // control
  input  wire                  start_i,
  input  wire [M_W-1:0]        cfg_m_i,
  input  wire [K_W-1:0]        cfg_k_i,
  output wire                  busy_o,
  output reg                   done_o,
  output reg                   cfg_err_o,
  output wire [31:0]           cycles_o,
  // activations
  input  wire                  act_valid_i,
  output wire                  act_ready_o,
  input  wire [COLS*`FINEQ_ACT_W-1:0] act_data_i,
  // weights
  input  wire                  wgt_valid_i,
  output wire                  wgt_ready_o,
  input  wire [BPV*`FINEQ_BLOCK_BITS-1:0] wgt_data_i,
  // outputs
  output wire                  out_valid_o,
  input  wire                  out_ready_i,
  output wire [COLS*ACC_W-1:0] out_data_o
);

  localparam integer ACT_W = `FINEQ_ACT_W;
  localparam integer POW2  = (CODING == 2) ? 1 : 0;  // the power-of-two PEs
  localparam integer SUM_W = `FINEQ_SUM_W(ACT_W + POW2 * `FINEQ_POW2_SHIFT, ROWS);
  localparam integer VW    = $clog2(ROWS + 1);
  localparam integer RW    = (ROWS > 1) ? $clog2(ROWS) : 1;
  localparam integer PW    = (PSUM_DEPTH > 1) ? $clog2(PSUM_DEPTH) : 1;
  localparam integer SKIP_STEP = (ROWS / 8) % 3;  // skip advance per K tile, in 8-weight units

  localparam [2:0] S_IDLE = 3'd0, S_LOAD = 3'd1, S_STREAM = 3'd2, S_DRAIN = 3'd3, S_FLUSH = 3'd4;

  initial begin
    if (ROWS < 8 || ROWS % 8 != 0) begin
      $error("%m: ROWS (%0d) must be a positive multiple of 8", ROWS);
      $finish;
    end
    if (COLS < 1) begin
      $error("%m: COLS (%0d) must be positive", COLS);
      $finish;
    end
    if (PSUM_DEPTH < 1 || PSUM_DEPTH >= (1 << M_W)) begin
      $error("%m: PSUM_DEPTH (%0d) must be in 1 .. 2^M_W - 1 (M_W = %0d)", PSUM_DEPTH, M_W);
      $finish;
    end
    if (K_W > 22 || ACC_W < 32) begin
      $error("%m: K_W (%0d) <= 22 and ACC_W (%0d) >= 32 keep Y exact in int32", K_W, ACC_W);
      $finish;
    end
    if (CLOCK_GATE != 0 && CLOCK_GATE != 1) begin
      $error("%m: CLOCK_GATE (%0d) must be 0 or 1", CLOCK_GATE);
      $finish;
    end
    if (CODING < 0 || CODING > 2) begin
      $error("%m: CODING (%0d) must be 0 (thermometer), 1 (binary) or 2 (power-of-two)", CODING);
      $finish;
    end
    if (BPV != `FINEQ_BPV(ROWS)) begin
      $error("%m: BPV (%0d) must be (ROWS + 16 + 23) / 24 = %0d for ROWS = %0d", BPV, `FINEQ_BPV(ROWS), ROWS);
      $finish;
    end
  end

  // ---------------------------------------------------------------- sequencer state
  reg [2:0]       state_q, state_d;
  reg [M_W-1:0]   m_left_q, m_left_d;      // rows of M from the current chunk on
  reg [M_W-1:0]   chunk_len_q, chunk_len_d; // rows in the current chunk
  reg [K_W-1:0]   k_q, k_d;                // K of the run
  reg [K_W-1:0]   krem_q, krem_d;          // K - ROWS*t: weights from tile t on
  reg             first_tile_q, first_tile_d;
  reg [1:0]       skip_q, skip_d;          // (ROWS*t mod 24) / 8
  reg [RW-1:0]    load_cnt_q, load_cnt_d;  // activation beats taken in this LOAD
  reg [M_W-1:0]   beat_cnt_q, beat_cnt_d;  // weight beats taken in this STREAM
  reg [31:0]      cycles_q, cycles_d;

  localparam [K_W-1:0] ROWS_K  = ROWS[K_W-1:0];
  localparam [M_W-1:0] DEPTH_M = PSUM_DEPTH[M_W-1:0];

  wire last_tile = (krem_q <= ROWS_K);
  wire [VW-1:0] rows_t = last_tile ? krem_q[VW-1:0] : ROWS[VW-1:0];

  // ---------------------------------------------------------------- decode stage (D)
  reg             dv_q, dv_d;
  reg [ROWS*`FINEQ_W_BITS-1:0] dvec_q, dvec_d;
  reg [PW-1:0]    dm_q, dm_d;              // row offset within the chunk
  wire [ROWS*`FINEQ_W_BITS-1:0] beat_vec;

  fineq_beat_decoder #(.ROWS(ROWS), .BPV(BPV)) u_beat_dec (
    .beat_i (wgt_data_i),
    .skip_i (skip_q),
    .valid_i(rows_t),
    .vec_o  (beat_vec)
  );

  // ---------------------------------------------------------------- temporal stage (T)
  reg             ev_q, ev_d;
  reg [PW-1:0]    em_q, em_d;
  wire [ROWS-1:0] enc_bits, enc_x2, enc_x4, enc_signs;
  wire            enc_first, enc_last, enc_shift;

  reg             out_valid_q, out_valid_d;
  reg [COLS*ACC_W-1:0] out_data_q, out_data_d;

  // accumulate stage (A): the T cycle before, delayed by the tree-sum register
  reg             av_q, av_d;              // A holds a temporal cycle
  reg             a_first_q, a_first_d;    // ... the first of its vector
  reg             a_last_q, a_last_d;      // ... the last of its vector
  reg             a_shift_q, a_shift_d;    // ... a doubled (b1) cycle of the binary coding
  reg [PW-1:0]    am_q, am_d;              // ... of row am_q of the chunk

  wire out_free = !out_valid_q || out_ready_i;
  wire a_fin    = av_q && a_last_q;                     // a vector's sum is complete this cycle
  wire a_stall  = a_fin && last_tile && !out_free;      // its output row cannot leave
  wire a_adv    = av_q && !a_stall;                     // the accumulators add this cycle
  wire t_adv    = ev_q && !a_stall;                     // a temporal cycle of work
  wire t_fin    = t_adv && enc_last;                              // the vector ends this cycle
  wire t_take   = !ev_q || t_fin;                                 // T can take a vector
  wire d_to_t   = dv_q && t_take;

  assign wgt_ready_o = (state_q == S_STREAM) && (!dv_q || d_to_t);
  assign act_ready_o = (state_q == S_LOAD);
  wire wgt_fire = wgt_valid_i && wgt_ready_o;
  wire act_fire = act_valid_i && act_ready_o;

  wire enc_step = t_adv && !enc_last;  // named: synth/activity.py reads it from the VCD

  fineq_temporal_encoder #(.ROWS(ROWS), .CLOCK_GATE(CLOCK_GATE), .CODING(CODING)) u_enc (
    .clk_i  (clk_i),
    .rst_ni (rst_ni),
    .load_i (d_to_t),
    .vec_i  (dvec_q),
    .step_i (enc_step),
    .bits_o (enc_bits),
    .x2_o   (enc_x2),
    .x4_o   (enc_x4),
    .signs_o(enc_signs),
    .shift_o(enc_shift),
    .first_o(enc_first),
    .last_o (enc_last)
  );

  // ---------------------------------------------------------------- array and accumulators
  reg [ROWS-1:0] act_we;
  integer r;
  always @* begin
    act_we = {ROWS{1'b0}};
    for (r = 0; r < ROWS; r = r + 1) begin
      act_we[r] = act_fire && (load_cnt_q == r[RW-1:0]);
    end
  end

  wire [COLS*SUM_W-1:0] col_sum;
  fineq_pe_array #(.ROWS(ROWS), .COLS(COLS), .ACT_W(ACT_W), .PIPE(1), .CLOCK_GATE(CLOCK_GATE), .POW2(POW2)) u_array (
    .clk_i    (clk_i),
    .rst_ni   (rst_ni),
    .act_we_i (act_we),
    .act_row_i(act_data_i),
    .bits_i   (enc_bits),
    .x2_i     (enc_x2),
    .x4_i     (enc_x4),
    .signs_i  (enc_signs),
    .en_i     (t_adv),
    .col_sum_o(col_sum)
  );

  wire [COLS*ACC_W-1:0] psum_rd;
  wire [COLS*ACC_W-1:0] acc_sum;
  wire [COLS*ACC_W-1:0] acc_base = first_tile_q ? {COLS*ACC_W{1'b0}} : psum_rd;

  fineq_accumulator #(.COLS(COLS), .SUM_W(SUM_W), .ACC_W(ACC_W), .CLOCK_GATE(CLOCK_GATE),
                      .SHIFT((CODING == 1) ? 1 : 0)) u_acc (
    .clk_i  (clk_i),
    .rst_ni (rst_ni),
    .en_i   (a_adv),
    .first_i(a_first_q),
    .shift_i(a_shift_q),
    .base_i (acc_base),
    .sum_i  (col_sum),
    .sum_o  (acc_sum)
  );

  fineq_psum_buf #(.DEPTH(PSUM_DEPTH), .WIDTH(COLS*ACC_W)) u_psum (
    .clk_i  (clk_i),
    .we_i   (a_fin && !last_tile),
    .waddr_i(am_q),
    .wdata_i(acc_sum),
    .raddr_i(am_q),
    .rdata_o(psum_rd)
  );

  // ---------------------------------------------------------------- pipeline next state
  always @* begin
    dv_d   = dv_q;
    dvec_d = dvec_q;
    dm_d   = dm_q;
    ev_d   = ev_q;
    em_d   = em_q;
    av_d   = av_q;
    a_first_d = a_first_q;
    a_last_d  = a_last_q;
    a_shift_d = a_shift_q;
    am_d   = am_q;
    out_valid_d = out_valid_q;
    out_data_d  = out_data_q;
    if (!a_stall) begin
      av_d      = t_adv;
      a_first_d = enc_first;
      a_last_d  = enc_last;
      a_shift_d = enc_shift;
      am_d      = em_q;
    end
    if (d_to_t) begin
      dv_d = 1'b0;
      ev_d = 1'b1;
      em_d = dm_q;
    end else if (t_fin) begin
      ev_d = 1'b0;
    end
    if (wgt_fire) begin
      dv_d   = 1'b1;
      dvec_d = beat_vec;
      dm_d   = beat_cnt_q[PW-1:0];
    end
    if (out_valid_q && out_ready_i) out_valid_d = 1'b0;
    if (a_fin && last_tile && out_free) begin
      out_valid_d = 1'b1;
      out_data_d  = acc_sum;
    end
  end

  // ---------------------------------------------------------------- sequencer next state
  wire drained = !dv_q && !ev_q && (!av_q || (a_fin && !a_stall));
  wire [2:0] skip_sum  = {1'b0, skip_q} + SKIP_STEP[2:0];  // 3 bits: 2 + 2 must not wrap
  wire [1:0] skip_wrap = skip_sum[1:0] + 2'd1;  // skip_sum - 3 for skip_sum in 3..4
  wire [M_W-1:0] next_left = m_left_q - chunk_len_q;

  always @* begin
    state_d      = state_q;
    m_left_d     = m_left_q;
    chunk_len_d  = chunk_len_q;
    k_d          = k_q;
    krem_d       = krem_q;
    first_tile_d = first_tile_q;
    skip_d       = skip_q;
    load_cnt_d   = load_cnt_q;
    beat_cnt_d   = beat_cnt_q;
    cycles_d     = (state_q != S_IDLE) ? cycles_q + 32'd1 : cycles_q;
    done_o       = 1'b0;
    case (state_q)
      S_IDLE: begin
        if (start_i && cfg_m_i != {M_W{1'b0}} && cfg_k_i != {K_W{1'b0}}) begin
          state_d      = S_LOAD;
          m_left_d     = cfg_m_i;
          chunk_len_d  = (cfg_m_i > DEPTH_M) ? DEPTH_M : cfg_m_i;
          k_d          = cfg_k_i;
          krem_d       = cfg_k_i;
          first_tile_d = 1'b1;
          skip_d       = 2'd0;
          load_cnt_d   = {RW{1'b0}};
          cycles_d     = 32'd0;
        end
      end
      S_LOAD: begin
        if (act_fire) begin
          load_cnt_d = load_cnt_q + 1'b1;
          if ({1'b0, load_cnt_q} == rows_t - 1'b1) begin
            state_d    = S_STREAM;
            load_cnt_d = {RW{1'b0}};
            beat_cnt_d = {M_W{1'b0}};
          end
        end
      end
      S_STREAM: begin
        if (wgt_fire) begin
          beat_cnt_d = beat_cnt_q + 1'b1;
          if (beat_cnt_q == chunk_len_q - 1'b1) state_d = S_DRAIN;
        end
      end
      S_DRAIN: begin
        if (drained) begin
          if (!last_tile) begin
            state_d      = S_LOAD;
            krem_d       = krem_q - ROWS_K;
            first_tile_d = 1'b0;
            skip_d       = (skip_sum >= 3'd3) ? skip_wrap[1:0] : skip_sum[1:0];
          end else if (next_left != {M_W{1'b0}}) begin
            state_d      = S_LOAD;
            m_left_d     = next_left;
            chunk_len_d  = (next_left > DEPTH_M) ? DEPTH_M : next_left;
            krem_d       = k_q;
            first_tile_d = 1'b1;
            skip_d       = 2'd0;
          end else begin
            state_d = S_FLUSH;
          end
        end
      end
      S_FLUSH: begin
        if (out_free) begin
          state_d = S_IDLE;
          done_o  = 1'b1;
        end
      end
      default: state_d = S_IDLE;
    endcase
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q      <= S_IDLE;
      m_left_q     <= {M_W{1'b0}};
      chunk_len_q  <= {M_W{1'b0}};
      k_q          <= {K_W{1'b0}};
      krem_q       <= {K_W{1'b0}};
      first_tile_q <= 1'b1;
      skip_q       <= 2'd0;
      load_cnt_q   <= {RW{1'b0}};
      beat_cnt_q   <= {M_W{1'b0}};
      cycles_q     <= 32'd0;
      dv_q         <= 1'b0;
      dvec_q       <= {ROWS*`FINEQ_W_BITS{1'b0}};
      dm_q         <= {PW{1'b0}};
      ev_q         <= 1'b0;
      em_q         <= {PW{1'b0}};
      av_q         <= 1'b0;
      a_first_q    <= 1'b0;
      a_last_q     <= 1'b0;
      a_shift_q    <= 1'b0;
      am_q         <= {PW{1'b0}};
      out_valid_q  <= 1'b0;
      out_data_q   <= {COLS*ACC_W{1'b0}};
      cfg_err_o    <= 1'b0;
    end else begin
      state_q      <= state_d;
      m_left_q     <= m_left_d;
      chunk_len_q  <= chunk_len_d;
      k_q          <= k_d;
      krem_q       <= krem_d;
      first_tile_q <= first_tile_d;
      skip_q       <= skip_d;
      load_cnt_q   <= load_cnt_d;
      beat_cnt_q   <= beat_cnt_d;
      cycles_q     <= cycles_d;
      dv_q         <= dv_d;
      dvec_q       <= dvec_d;
      dm_q         <= dm_d;
      ev_q         <= ev_d;
      em_q         <= em_d;
      av_q         <= av_d;
      a_first_q    <= a_first_d;
      a_last_q     <= a_last_d;
      a_shift_q    <= a_shift_d;
      am_q         <= am_d;
      out_valid_q  <= out_valid_d;
      out_data_q   <= out_data_d;
      cfg_err_o    <= (state_q == S_IDLE && start_i) ? (cfg_m_i == {M_W{1'b0}} || cfg_k_i == {K_W{1'b0}})
                                                     : cfg_err_o;
    end
  end

  assign busy_o      = (state_q != S_IDLE);
  assign cycles_o    = cycles_q;
  assign out_valid_o = out_valid_q;
  assign out_data_o  = out_data_q;

endmodule

`resetall
