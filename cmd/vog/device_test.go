package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/vogscore/vog/engine/torch"
)

// TestWorkerSaysItsDevice: vog worker's first line says where its models
// compute, before it reaches the server: with the default --device auto,
// the first CUDA device where the engine sees one, else the cpu.
func TestWorkerSaysItsDevice(t *testing.T) {
	bin := vog(t)
	path, err := torch.Find()
	if err != nil {
		t.Fatal(err)
	}
	lib, err := torch.Open(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := "gradient work on cpu, reduce work; connecting to "
	if lib.CUDADevices() > 0 {
		want = "gradient work on cuda:0, reduce work; connecting to "
	}
	// Nothing listens there: the worker waits for its server.
	cmd := exec.Command(bin, "worker", "--temporal", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--threads", "1")
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "vog worker: "+want) {
		t.Fatalf("first line %q (%v), want it to begin %q", line, err, "vog worker: "+want)
	}
}
