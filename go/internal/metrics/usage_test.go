package metrics

import (
	"os"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// TestGPUsKeepsCPUBaseline: GPUs reads the devices as Sample does, and a Sample after
// it still measures CPU over the period since the previous Sample.
func TestGPUsKeepsCPUBaseline(t *testing.T) {
	const mb = 1 << 20
	dev := fakeDevice("GPU-A", 30, 2000*mb, 8000*mb, nil, nil, nvml.ERROR_NOT_SUPPORTED)
	lib := &mock.Interface{
		InitFunc:                   func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:               func() nvml.Return { return nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(int) (nvml.Device, nvml.Return) { return dev, nvml.SUCCESS },
	}
	s := newSampler(lib, []int{0})
	defer s.Close()
	s.Sample(os.Getpid())
	mark := s.prev[os.Getpid()]
	gpus := s.GPUs(os.Getpid())
	if len(gpus) != 1 || gpus[0].Percent == nil || *gpus[0].Percent != 30 || *gpus[0].VRAMTotalMB != 8000 {
		t.Fatalf("GPUs %+v", gpus)
	}
	if s.prev[os.Getpid()] != mark {
		t.Fatal("GPUs moved Sample's CPU baseline")
	}
	none := NewSampler(nil)
	defer none.Close()
	if g := none.GPUs(); len(g) != 0 {
		t.Fatalf("GPUs without a configured GPU: %+v", g)
	}
}

func TestReadUsage(t *testing.T) {
	end := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(end) { // some CPU time of our own
	}
	u, ok := ReadUsage(os.Getpid())
	if !ok || u.CPUSeconds <= 0 || u.RSSBytes < 1<<20 {
		t.Fatalf("ReadUsage(self) = %+v, %v", u, ok)
	}
	if _, ok := ReadUsage(1 << 30); ok {
		t.Fatal("ReadUsage of a pid that cannot exist succeeded")
	}
}
