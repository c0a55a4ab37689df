package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

const helperEnv = "METRICS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "spin":
		// Four spinning threads keep well above one core's half even on a busy
		// two-core machine.
		runtime.GOMAXPROCS(4)
		var sink atomic.Uint64
		for i := 0; i < 4; i++ {
			go func() {
				for {
					sink.Add(1)
				}
			}()
		}
		helperWait()
	case "idle":
		helperWait()
	case "alloc":
		// MAP_POPULATE faults the pages in without Go writes, so the race detector's
		// shadow memory does not inflate the figure.
		b, err := syscall.Mmap(-1, 0, 50<<20, syscall.PROT_READ|syscall.PROT_WRITE,
			syscall.MAP_ANON|syscall.MAP_PRIVATE|syscall.MAP_POPULATE)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		helperWait()
		runtime.KeepAlive(b)
	default:
		os.Exit(2)
	}
}

// helperWait says "ready" and waits for stdin to close.
func helperWait() {
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

func startHelper(t *testing.T, mode string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// GORACE spares a -race build the detector's 1 s sleep at exit.
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE=atexit_sleep_ms=0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		_ = cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("helper %s: %q %v", mode, line, err)
	}
	return cmd.Process.Pid
}

func TestNoDriverGivesNullsAndReason(t *testing.T) {
	s := NewSampler([]int{0})
	defer s.Close()
	snap := s.Sample(os.Getpid())
	if s.nvml != nil {
		// A machine with a driver: the figures must be there instead.
		if snap.GPUError != "" || len(snap.GPUs) != 1 || snap.GPUPercent == nil || snap.VRAMMB == nil {
			t.Fatalf("with NVML: %+v", snap)
		}
		return
	}
	if snap.GPUPercent != nil || snap.VRAMMB != nil || snap.GPUs != nil {
		t.Fatalf("GPU figures without NVML: %+v", snap)
	}
	if !strings.HasPrefix(snap.GPUError, "NVML unavailable: ") {
		t.Fatalf("GPUError = %q", snap.GPUError)
	}
	if snap.RAMMB <= 0 {
		t.Fatalf("RAM of this process: %v", snap.RAMMB)
	}
	s.Close()
	s.Close()
	if snap := s.Sample(os.Getpid()); snap.GPUError == "" {
		t.Fatal("no reason after Close")
	}
}

func TestCPUPercentBusyAndIdle(t *testing.T) {
	busy := startHelper(t, "spin")
	idle := startHelper(t, "idle")
	sb, si := NewSampler(nil), NewSampler(nil)
	defer sb.Close()
	defer si.Close()
	// The scheduler's own run time (ns, all threads) is the reference.
	ref0, t0 := schedRuntime(t, busy), time.Now()
	sb.Sample(busy)
	si.Sample(idle)
	time.Sleep(500 * time.Millisecond) // the measurement window itself
	b, i := sb.Sample(busy), si.Sample(idle)
	ref := 100 * float64(schedRuntime(t, busy)-ref0) / float64(time.Since(t0).Nanoseconds())
	t.Logf("busy %.1f%% (scheduler: %.1f%%), idle %.1f%%", b.CPUPercent, ref, i.CPUPercent)
	if d := b.CPUPercent - ref; d > 15+0.1*ref || d < -15-0.1*ref {
		t.Errorf("busy child: %.1f%%, the scheduler says %.1f%%", b.CPUPercent, ref)
	}
	// On a machine busy with other work the spinner may get less than half a core;
	// the comparison above still holds then.
	if ref > 60 && b.CPUPercent <= 50 {
		t.Errorf("busy child: %.1f%% of a core, want > 50", b.CPUPercent)
	}
	if i.CPUPercent >= 5 || i.CPUPercent < 0 {
		t.Errorf("idle child: %.1f%% of a core, want < 5", i.CPUPercent)
	}
	// A fresh Sampler measures since the process started.
	life := NewSampler(nil).Sample(busy)
	if life.CPUPercent <= 0.5*ref || life.CPUPercent > 100*float64(runtime.NumCPU())+10 {
		t.Errorf("busy child over its life: %.1f%% (last 500 ms: %.1f%%)", life.CPUPercent, ref)
	}
}

// schedRuntime sums the time pid's threads spent on a CPU (/proc/<pid>/task/*/schedstat).
func schedRuntime(t *testing.T, pid int) int64 {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		var ns int64
		fmt.Sscan(string(b), &ns)
		sum += ns
	}
	return sum
}

func TestRAMOfAllocatingProcess(t *testing.T) {
	idle := startHelper(t, "idle")
	alloc := startHelper(t, "alloc")
	s := NewSampler(nil)
	base, big := s.Sample(idle).RAMMB, s.Sample(alloc).RAMMB
	t.Logf("idle %.1f MB, alloc %.1f MB", base, big)
	if d := big - base; d < 45 || d > 60 {
		t.Fatalf("a process holding 50 MB shows %.1f MB more than an idle twin", d)
	}
	if sum := s.Sample(idle, alloc).RAMMB; sum < big+base-2 || sum > big+base+2 {
		t.Fatalf("sum %.1f, parts %.1f + %.1f", sum, base, big)
	}
}

func TestMissingAndZombieContributeNothing(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=none", "GORACE=atexit_sleep_ms=0") // exits 2 at once
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, _, ok := statFields(pid)
		if ok && state == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child never became a zombie (state %q)", state)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := NewSampler(nil)
	if snap := s.Sample(pid, 0, -5, 1<<30); snap.CPUPercent != 0 || snap.RAMMB != 0 {
		t.Fatalf("zombie/missing pids: %+v", snap)
	}
	self := s.Sample(os.Getpid()).RAMMB
	if snap := s.Sample(os.Getpid(), pid, 1<<30); snap.RAMMB < self*0.5 || snap.RAMMB > self*2 {
		t.Fatalf("self %.1f MB, with dead pids %.1f MB", self, snap.RAMMB)
	}
}

func TestSampleIsFast(t *testing.T) {
	s := NewSampler([]int{0})
	defer s.Close()
	idle := startHelper(t, "idle")
	var d []time.Duration
	for i := 0; i < 11; i++ {
		start := time.Now()
		s.Sample(os.Getpid(), idle)
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	t.Logf("Sample median %v max %v", d[5], d[10])
	if d[5] > 20*time.Millisecond {
		t.Fatalf("Sample median %v, want < 20ms", d[5])
	}
}

// fakeDevice is an NVML device as the mock package builds it.
func fakeDevice(name string, util uint32, used, total uint64, compute, graphics []nvml.ProcessInfo, procRet nvml.Return) *mock.Device {
	return &mock.Device{
		GetNameFunc:             func() (string, nvml.Return) { return name, nvml.SUCCESS },
		GetUtilizationRatesFunc: func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: util}, nvml.SUCCESS },
		GetMemoryInfoFunc:       func() (nvml.Memory, nvml.Return) { return nvml.Memory{Used: used, Total: total}, nvml.SUCCESS },
		GetComputeRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) {
			return compute, procRet
		},
		GetGraphicsRunningProcessesFunc: func() ([]nvml.ProcessInfo, nvml.Return) {
			return graphics, procRet
		},
	}
}

func TestGPUAggregation(t *testing.T) {
	const mb = 1 << 20
	engine := 4242
	devs := map[int]nvml.Device{
		// Per-process memory known: the engine's 300 MB (in both lists, counted once)
		// plus another process's 1000 MB that is not ours.
		0: fakeDevice("GPU-A", 30, 2000*mb, 8000*mb,
			[]nvml.ProcessInfo{{Pid: uint32(engine), UsedGpuMemory: 300 * mb}, {Pid: 7, UsedGpuMemory: 1000 * mb}},
			[]nvml.ProcessInfo{{Pid: uint32(engine), UsedGpuMemory: 300 * mb}}, nvml.SUCCESS),
		// Process lists unsupported: falls back to the device's used memory.
		1: fakeDevice("GPU-B", 50, 500*mb, 8000*mb, nil, nil, nvml.ERROR_NOT_SUPPORTED),
		// Listed but without a memory figure: falls back as well.
		2: fakeDevice("GPU-C", 70, 100*mb, 8000*mb,
			[]nvml.ProcessInfo{{Pid: uint32(engine), UsedGpuMemory: notAvailable}}, nil, nvml.SUCCESS),
	}
	shut := 0
	lib := &mock.Interface{
		InitFunc:     func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc: func() nvml.Return { shut++; return nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if d, ok := devs[i]; ok {
				return d, nvml.SUCCESS
			}
			return nil, nvml.ERROR_INVALID_ARGUMENT
		},
	}
	s := newSampler(lib, []int{0, 1, 2, 9})
	snap := s.Sample(os.Getpid(), engine)
	if snap.GPUPercent == nil || *snap.GPUPercent != 50 {
		t.Fatalf("GPUPercent = %v, want mean of 30, 50, 70", fmtPtr(snap.GPUPercent))
	}
	if snap.VRAMMB == nil || *snap.VRAMMB != 300+500+100 {
		t.Fatalf("VRAMMB = %v, want 300 (engine) + 500 + 100 (device fallbacks)", fmtPtr(snap.VRAMMB))
	}
	if len(snap.GPUs) != 4 || snap.GPUs[0].Name != "GPU-A" || *snap.GPUs[0].ProcessVRAMMB != 300 ||
		*snap.GPUs[0].VRAMUsedMB != 2000 || *snap.GPUs[0].VRAMTotalMB != 8000 ||
		snap.GPUs[1].ProcessVRAMMB != nil || snap.GPUs[2].ProcessVRAMMB != nil || snap.GPUs[3].ID != 9 ||
		snap.GPUs[3].Percent != nil {
		t.Fatalf("GPUs = %+v", snap.GPUs)
	}
	if !strings.Contains(snap.GPUError, "gpu 9: device handle: ERROR_INVALID_ARGUMENT") {
		t.Fatalf("GPUError = %q", snap.GPUError)
	}
	// Other processes listed but none of ours (host pids seen from a container):
	// unknown, so the device's used memory counts.
	if snap := s.Sample(os.Getpid()); snap.GPUs[0].ProcessVRAMMB != nil || *snap.VRAMMB != 2000+500+100 {
		t.Fatalf("no pid of ours listed: process %v, total %v", fmtPtr(snap.GPUs[0].ProcessVRAMMB), fmtPtr(snap.VRAMMB))
	}
	// Nothing listed at all: nothing of ours on the device.
	devs[1] = fakeDevice("GPU-B", 50, 500*mb, 8000*mb, nil, nil, nvml.SUCCESS)
	if snap := s.Sample(engine); snap.GPUs[1].ProcessVRAMMB == nil || *snap.GPUs[1].ProcessVRAMMB != 0 {
		t.Fatalf("empty process lists: %v", fmtPtr(snap.GPUs[1].ProcessVRAMMB))
	}
	s.Close()
	if shut != 1 {
		t.Fatalf("Shutdown called %d times", shut)
	}
	if snap := s.Sample(); snap.GPUs != nil || snap.GPUError == "" {
		t.Fatalf("after Close: %+v", snap)
	}
}

func TestFailedInitCallsNothingElse(t *testing.T) {
	// Every other method of the mock panics when called.
	lib := &mock.Interface{InitFunc: func() nvml.Return { return nvml.ERROR_DRIVER_NOT_LOADED }}
	s := newSampler(lib, []int{0, 1})
	snap := s.Sample(os.Getpid())
	s.Close()
	if snap.GPUError != "NVML unavailable: NVIDIA driver not loaded" || snap.GPUs != nil {
		t.Fatalf("%+v", snap)
	}
	panicky := &mock.Interface{InitFunc: func() nvml.Return { panic(errors.New("dlopen")) }}
	if snap := newSampler(panicky, []int{0}).Sample(); !strings.Contains(snap.GPUError, "not found") {
		t.Fatalf("panicking Init: %+v", snap)
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
