# OpenSTA on one unit (environment: LIB, NETLIST, UNIT_TOP, PERIOD_NS, ACTIVITY = tcl file or empty,
# ACTIVITY_SYN = the synthetic workload's tcl file or empty,
# IN_DELAY_PORT / IN_DELAY_NS = an input bus that arrives late, GROUPS = "name regexp ..." for power groups).
# Prints "RESULT key value..." lines for synth/sta.py.
read_liberty $::env(LIB)
read_verilog $::env(NETLIST)
link_design $::env(UNIT_TOP)
set period $::env(PERIOD_NS)
if {[llength [get_ports -quiet clk_i]]} {
  create_clock -name clk -period $period [get_ports clk_i]
  set ins [delete_from_list [all_inputs] [get_ports clk_i]]
} else {
  create_clock -name clk -period $period
  set ins [all_inputs]
}
set_input_delay 0 -clock clk $ins
if {$::env(IN_DELAY_PORT) ne ""} {
  set_input_delay $::env(IN_DELAY_NS) -clock clk [get_ports $::env(IN_DELAY_PORT)]
}
set_output_delay 0 -clock clk [all_outputs]

puts "RESULT slack_ns [expr {[sta::worst_slack_cmd max] * 1e9}]"
puts "BEGIN_PATH"
report_checks -path_delay max -digits 4
puts "END_PATH"
puts "BEGIN_OUT_PATH"
report_checks -path_delay max -to [all_outputs] -digits 4
puts "END_OUT_PATH"

proc groups_power {tag} {
  set corner [sta::cmd_corner]
  set total [sta::design_power $corner]
  puts "RESULT power_$tag [lrange $total 0 3]"
  array set acc {}
  foreach {g re} $::env(GROUPS) { set acc($g) {0 0 0 0} }
  set acc(other) {0 0 0 0}
  foreach inst [sta::network_leaf_instances] {
    set name [get_full_name $inst]
    set grp other
    foreach {g re} $::env(GROUPS) { if {[regexp $re $name]} { set grp $g; break } }
    set p [sta::instance_power $inst $corner]
    set s {}
    foreach a $acc($grp) b $p { lappend s [expr {$a + $b}] }
    set acc($grp) $s
  }
  foreach g [array names acc] { puts "RESULT group_$tag $g $acc($g)" }
}

# Clock gates. OpenSTA 2.0.17 gives a gated clock the full clock activity (a clock-gated register would
# cost as much as an ungated one), so for power each gate's output GCK becomes a clock of period
# PERIOD / duty, duty = the share of cycles its enable port is high (measured: ::duty(port) from the
# activity file; default case: 0.5, the global duty). Timing above used the real clock through the gates.
array set ::duty {}
proc gate_clocks {tag} {
  set i 0
  foreach inst [sta::network_leaf_instances] {
    if {[get_property $inst ref_name] ne "CLKGATETST_X1"} { continue }
    set name [get_full_name $inst]
    set d 0.5
    if {$tag eq "vcd"} {
      set d ""
      foreach f [get_fanin -to [get_pins $name/E] -flat -startpoints_only] {
        set p [get_full_name $f]
        if {[info exists ::duty($p)]} { set d [expr {$d eq "" ? $::duty($p) : max($d, $::duty($p))}] }
      }
      if {$d eq ""} { error "clock gate $name: no measured duty for the port that enables it" }
    }
    create_clock -name gclk_$i -period [expr {$::period / max($d, 1e-6)}] [get_pins $name/GCK]
    incr i
  }
  puts "RESULT clock_gates $i"
}

# Measured activity first: in this OpenSTA a -global activity, once set, overrides per-port annotation.
if {$::env(ACTIVITY) ne ""} {
  source $::env(ACTIVITY)
  gate_clocks vcd
  groups_power vcd
}
# The synthetic workload beside the real one (per-port annotation replaces the previous one).
if {$::env(ACTIVITY_SYN) ne ""} {
  array unset ::duty
  source $::env(ACTIVITY_SYN)
  gate_clocks vcd
  groups_power syn
}
set_power_activity -global -activity 0.1 -duty 0.5
gate_clocks default
groups_power default
