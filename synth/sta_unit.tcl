# OpenSTA on one unit (environment: LIB, NETLIST, UNIT_TOP, PERIOD_NS, ACTIVITY = tcl file or empty,
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

# Measured activity first: in this OpenSTA a -global activity, once set, overrides per-port annotation.
if {$::env(ACTIVITY) ne ""} {
  source $::env(ACTIVITY)
  groups_power vcd
}
set_power_activity -global -activity 0.1 -duty 0.5
groups_power default
