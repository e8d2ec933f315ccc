// What the benchmarks read about processes from /proc (Linux only): CPU time
// and peak resident set of a pid, and one line naming the machine. Used by
// conveyor-bench (tools/loadbench) and conveyor-orchestrator-bench.
#ifndef CONVEYOR_TOOLS_COMMON_PROC_STATS_H_
#define CONVEYOR_TOOLS_COMMON_PROC_STATS_H_

#include <cstdint>
#include <string>

namespace conveyor::tools {

// utime + stime of a process, from /proc/<pid>/stat; -1 if unreadable.
double CpuSeconds(int pid);

// VmHWM (peak resident set) in KiB, or -1.
int64_t PeakRssKib(int pid);

// "<CPU model>, <n> CPUs, Linux <release>", for the report's header.
std::string Machine();

}  // namespace conveyor::tools

#endif  // CONVEYOR_TOOLS_COMMON_PROC_STATS_H_
