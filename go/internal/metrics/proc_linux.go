package metrics

import (
	"bytes"
	"os"
	"strconv"

	"github.com/shirou/gopsutil/v3/process"
)

// userHZ is the unit of the tick counts in /proc (USER_HZ, 100 on every architecture
// Go runs Linux on).
const userHZ = 100

type procInfo struct {
	cpuSeconds float64 // user + system time
	rssBytes   uint64
	startTicks uint64  // start time since boot, in ticks
	ageSeconds float64 // time since the process started
}

// readProc reads one live process; ok is false when it is gone or a zombie.
//
// gopsutil reads CPU time and RSS. The start time comes from /proc/<pid>/stat and
// /proc/uptime directly: gopsutil's CreateTime adds the boot time in whole seconds,
// which is off by up to a second, too coarse for the CPU share of a young process.
func readProc(pid int) (procInfo, bool) {
	var pi procInfo
	state, start, ok := statFields(pid)
	if !ok || state == 'Z' || state == 'X' || state == 'x' {
		return pi, false
	}
	p, err := process.NewProcess(int32(pid))
	if err != nil {
		return pi, false
	}
	t, err := p.Times()
	if err != nil {
		return pi, false
	}
	m, err := p.MemoryInfo()
	if err != nil {
		return pi, false
	}
	pi.cpuSeconds = t.User + t.System
	pi.rssBytes = m.RSS
	pi.startTicks = start
	if up, ok := uptime(); ok {
		pi.ageSeconds = up - float64(start)/userHZ
	}
	return pi, true
}

// statFields returns the state (field 3) and start time (field 22) of /proc/<pid>/stat.
func statFields(pid int) (state byte, startTicks uint64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name (field 2) is in parentheses and may itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, false
	}
	start, err := strconv.ParseUint(string(f[19]), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return f[0][0], start, true
}

// uptime returns the seconds since boot from /proc/uptime (the clock that /proc's
// start times count on).
func uptime() (float64, bool) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(f[0]), 64)
	return v, err == nil
}
