// Package metrics samples CPU and memory of a set of processes (gopsutil) and GPU
// utilisation and memory (NVML through go-nvml). Without an NVIDIA driver the GPU
// fields are nil and Snapshot.GPUError says why; nothing crashes.
package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPU is one device's figures; a nil field was not available.
type GPU struct {
	// ID is the device index as given to NewSampler (the config's gpu-id).
	ID   int
	Name string
	// Percent is the device's utilisation over NVML's last sample period.
	Percent *float64
	// VRAMUsedMB and VRAMTotalMB are the device's memory in use and in total.
	VRAMUsedMB, VRAMTotalMB *float64
	// ProcessVRAMMB is the memory used on this device by the sampled processes, when
	// NVML lists them with their memory (not inside a container without the host's
	// pid namespace, nor in every driver mode).
	ProcessVRAMMB *float64
}

// Snapshot is one sample. Sizes are in MiB (2^20 bytes), reported as "MB".
type Snapshot struct {
	// CPUPercent is the CPU time of the sampled processes over the wall time since the
	// previous Sample of the same Sampler, as a percentage of one core (can exceed 100).
	CPUPercent float64
	// RAMMB is the sum of the processes' resident set sizes.
	RAMMB float64
	// GPUPercent is the mean utilisation of the configured GPUs that reported one.
	GPUPercent *float64
	// VRAMMB is, summed over the configured GPUs, the sampled processes' memory on the
	// device (GPU.ProcessVRAMMB) where NVML gives it, else the device's used memory
	// (GPU.VRAMUsedMB), which includes other processes such as other instances.
	VRAMMB *float64
	// GPUs has one entry per configured GPU, in the order given to NewSampler; nil
	// when NVML is unavailable.
	GPUs []GPU
	// GPUError says why GPU figures are missing or partial; "" when all were read.
	GPUError string
}

// Sampler takes Snapshots. It is safe for concurrent use.
type Sampler struct {
	gpuIDs []int

	mu      sync.Mutex
	nvml    nvml.Interface // nil unless Init succeeded
	nvmlErr string
	prev    map[int]cpuMark // last CPU reading per pid
}

// NewSampler prepares a Sampler for the given GPU indices (NVML device indices; they
// equal CUDA's gpu-id when CUDA_DEVICE_ORDER=PCI_BUS_ID or with a single GPU). It calls
// nvml.Init once; when that fails, the reason is kept for every Snapshot and no other
// NVML function is ever called (after a failed Init any call kills the process).
func NewSampler(gpuIDs []int) *Sampler {
	return newSampler(nvml.New(), gpuIDs)
}

func newSampler(lib nvml.Interface, gpuIDs []int) *Sampler {
	s := &Sampler{gpuIDs: append([]int(nil), gpuIDs...), prev: map[int]cpuMark{}}
	if ret := initNVML(lib); ret != nvml.SUCCESS {
		s.nvmlErr = "NVML unavailable: " + describe(ret)
	} else {
		s.nvml = lib
	}
	return s
}

// initNVML calls Init, turning a panic from the library loader into an error.
func initNVML(lib nvml.Interface) (ret nvml.Return) {
	defer func() {
		if r := recover(); r != nil {
			ret = nvml.ERROR_LIBRARY_NOT_FOUND
		}
	}()
	return lib.Init()
}

// describe names an NVML return code. Return.Error uses the library's nvmlErrorString
// only when the library is loaded and a built-in table otherwise, so it is safe after
// a failed Init.
func describe(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVIDIA driver library (libnvidia-ml.so.1) not found"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "NVIDIA driver not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to talk to the NVIDIA driver"
	}
	return ret.Error()
}

// Sample reads the figures of pids (typically the supervisor and the engine) and of
// the configured GPUs. It never sleeps. A pid that does not exist or is a zombie adds
// nothing and is not an error. On the first Sample that sees a pid, its CPU share is
// taken over the process's whole life.
func (s *Sampler) Sample(pids ...int) Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	var snap Snapshot
	now := time.Now()
	seen := make(map[int]cpuMark, len(pids))
	for _, pid := range pids {
		if _, dup := seen[pid]; dup || pid <= 0 {
			continue
		}
		pr, ok := readProc(pid)
		if !ok {
			continue
		}
		mark := cpuMark{start: pr.startTicks, cpu: pr.cpuSeconds, at: now}
		seen[pid] = mark
		snap.RAMMB += float64(pr.rssBytes) / mib
		if prev, ok := s.prev[pid]; ok && prev.start == pr.startTicks {
			if wall := now.Sub(prev.at).Seconds(); wall > 0 {
				snap.CPUPercent += 100 * (pr.cpuSeconds - prev.cpu) / wall
			}
		} else if pr.ageSeconds > 0 {
			snap.CPUPercent += 100 * pr.cpuSeconds / pr.ageSeconds
		}
	}
	s.prev = seen
	s.sampleGPUs(&snap, pids)
	return snap
}

// Close releases NVML. The Sampler still works afterwards, without GPU figures.
func (s *Sampler) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nvml != nil {
		s.nvml.Shutdown()
		s.nvml = nil
		s.nvmlErr = "NVML closed"
	}
}

const mib = 1 << 20

type cpuMark struct {
	start uint64 // process start time in clock ticks since boot; tells a reused pid
	cpu   float64
	at    time.Time
}

func (s *Sampler) sampleGPUs(snap *Snapshot, pids []int) {
	if s.nvml == nil {
		snap.GPUError = s.nvmlErr
		return
	}
	want := make(map[uint32]bool, len(pids))
	for _, p := range pids {
		if p > 0 {
			want[uint32(p)] = true
		}
	}
	var errs []string
	var utilSum, vram float64
	var utilN, vramN int
	snap.GPUs = make([]GPU, 0, len(s.gpuIDs))
	for _, id := range s.gpuIDs {
		g, gerrs := readGPU(s.nvml, id, want)
		for _, e := range gerrs {
			errs = append(errs, fmt.Sprintf("gpu %d: %s", id, e))
		}
		snap.GPUs = append(snap.GPUs, g)
		if g.Percent != nil {
			utilSum += *g.Percent
			utilN++
		}
		switch {
		case g.ProcessVRAMMB != nil:
			vram += *g.ProcessVRAMMB
			vramN++
		case g.VRAMUsedMB != nil:
			vram += *g.VRAMUsedMB
			vramN++
		}
	}
	if utilN > 0 {
		snap.GPUPercent = ptr(utilSum / float64(utilN))
	}
	if vramN > 0 {
		snap.VRAMMB = ptr(vram)
	}
	if len(s.gpuIDs) == 0 {
		errs = append(errs, "no GPU configured")
	}
	for i, e := range errs {
		if i > 0 {
			snap.GPUError += "; "
		}
		snap.GPUError += e
	}
}

func readGPU(lib nvml.Interface, id int, pids map[uint32]bool) (GPU, []string) {
	g := GPU{ID: id}
	dev, ret := lib.DeviceGetHandleByIndex(id)
	if ret != nvml.SUCCESS {
		return g, []string{"device handle: " + describe(ret)}
	}
	var errs []string
	if name, ret := dev.GetName(); ret == nvml.SUCCESS {
		g.Name = name
	}
	if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
		g.Percent = ptr(float64(u.Gpu))
	} else {
		errs = append(errs, "utilization: "+describe(ret))
	}
	if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
		g.VRAMUsedMB = ptr(float64(m.Used) / mib)
		g.VRAMTotalMB = ptr(float64(m.Total) / mib)
	} else {
		errs = append(errs, "memory: "+describe(ret))
	}
	g.ProcessVRAMMB = processVRAM(dev, pids)
	return g, errs
}

// processVRAM sums the device memory of pids over NVML's compute and graphics process
// lists (a process in both is counted once). It is nil, so that the caller falls back
// to the device's used memory, when neither list could be read, when a matching entry
// has no memory figure (NVML_VALUE_NOT_AVAILABLE, e.g. under some virtualisation), or
// when the lists hold processes but none of pids: NVML reports host pids, which differ
// from ours inside a container without the host's pid namespace. An empty list means
// no process uses the device: 0.
func processVRAM(dev nvml.Device, pids map[uint32]bool) *float64 {
	compute, cret := dev.GetComputeRunningProcesses()
	graphics, gret := dev.GetGraphicsRunningProcesses()
	if cret != nvml.SUCCESS && gret != nvml.SUCCESS {
		return nil
	}
	counted := map[uint32]bool{}
	var total uint64
	for _, list := range [][]nvml.ProcessInfo{compute, graphics} {
		for _, p := range list {
			if !pids[p.Pid] || counted[p.Pid] {
				continue
			}
			if p.UsedGpuMemory == notAvailable {
				return nil
			}
			counted[p.Pid] = true
			total += p.UsedGpuMemory
		}
	}
	if len(counted) == 0 && len(compute)+len(graphics) > 0 {
		return nil
	}
	return ptr(float64(total) / mib)
}

// notAvailable is NVML_VALUE_NOT_AVAILABLE as an unsigned long long.
const notAvailable = ^uint64(0)

func ptr(v float64) *float64 { return &v }

// GPUs reads the configured GPUs as Sample does (nil without NVML), leaving Sample's
// CPU baseline alone, so that another reader (the Prometheus exporter) does not shorten
// the period query_metrics' cpu_percent is taken over.
func (s *Sampler) GPUs(pids ...int) []GPU {
	s.mu.Lock()
	defer s.mu.Unlock()
	var snap Snapshot
	s.sampleGPUs(&snap, pids)
	return snap.GPUs
}

// Usage is one process's CPU time (user + system) and resident memory.
type Usage struct {
	CPUSeconds float64
	RSSBytes   uint64
}

// ReadUsage reads a live process; ok is false when it is gone or a zombie.
func ReadUsage(pid int) (Usage, bool) {
	pi, ok := readProc(pid)
	return Usage{CPUSeconds: pi.cpuSeconds, RSSBytes: pi.rssBytes}, ok
}
