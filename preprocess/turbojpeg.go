package preprocess

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// TurboJPEGEnv names the environment variable that points at libturbojpeg
// (a path, or "none" for Go's decoder).
const TurboJPEGEnv = "VOG_TURBOJPEG"

// DefaultTurboJPEG is the library loaded when neither Options.TurboJPEG nor
// $VOG_TURBOJPEG names one: Debian's libturbojpeg0 (libjpeg-turbo 2.x; the
// TurboJPEG 2 API it uses is also in libjpeg-turbo 3).
const DefaultTurboJPEG = "libturbojpeg.so.0"

// TurboJPEG constants (turbojpeg.h, TurboJPEG 2 API).
const (
	tjpfRGB  = 0
	tjpfGray = 6
	tjpfCMYK = 11

	tjcsRGB   = 0
	tjcsYCbCr = 1
	tjcsGray  = 2
	tjcsCMYK  = 3
	tjcsYCCK  = 4

	// Decompression flags. The defaults are the accurate integer IDCT
	// (JDCT_ISLOW) and fancy upsampling, as PIL's JPEG decoder uses.
	// TJFLAG_LIMITSCANS rejects progressive JPEGs of more than 500 scans
	// (a denial of service; PIL would decode them, slowly).
	tjFlags = 32768

	tjerrWarning = 0
)

// TurboJPEG is a loaded libturbojpeg. It is safe for concurrent use: each
// call takes a decompressor handle from a pool.
type TurboJPEG struct {
	path string
	file string // the file the loader mapped, where /proc/self/maps tells

	initDecompress func() uintptr
	destroy        func(h uintptr) int32
	header3        func(h uintptr, buf *byte, size uintptr, w, ht, subsamp, cs *int32) int32
	decompress2    func(h uintptr, buf *byte, size uintptr, dst *byte, w, pitch, ht, pf, flags int32) int32
	errorStr2      func(h uintptr) string
	errorCode      func(h uintptr) int32

	scales  []scalingFactor // those below 1, largest first
	handles sync.Pool       // *tjHandle
}

type scalingFactor struct{ num, denom int }

type tjHandle struct {
	h       uintptr
	cleanup runtime.Cleanup // destroys h once the handle is unreachable
	warned  bool            // the last call recovered from corrupt data
}

var (
	turboMu     sync.Mutex
	turboOpened = map[string]*TurboJPEG{}
	turboErrs   = map[string]error{}
)

// LoadTurboJPEG opens libturbojpeg at path (once per process; later calls
// return the same library or the same error). An empty path means
// $VOG_TURBOJPEG, else DefaultTurboJPEG looked up by the dynamic loader.
// "none" (or $VOG_TURBOJPEG=none) returns an error: use Go's decoder.
func LoadTurboJPEG(path string) (*TurboJPEG, error) {
	if path == "" {
		path = os.Getenv(TurboJPEGEnv)
	}
	if path == "" {
		path = DefaultTurboJPEG
	}
	if path == "none" {
		return nil, errors.New("turbojpeg: disabled (none)")
	}
	turboMu.Lock()
	defer turboMu.Unlock()
	if t, ok := turboOpened[path]; ok {
		return t, nil
	}
	if err, ok := turboErrs[path]; ok {
		return nil, err
	}
	t, err := openTurboJPEG(path)
	if err != nil {
		turboErrs[path] = err
		return nil, err
	}
	turboOpened[path] = t
	return t, nil
}

func openTurboJPEG(path string) (t *TurboJPEG, err error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("turbojpeg: open %s: %w", path, err)
	}
	// RegisterLibFunc panics on a missing symbol: a library that is not
	// libturbojpeg is an error, not a crash.
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("turbojpeg: %s: %v", path, r)
		}
	}()
	for _, sym := range []string{"tjInitDecompress", "tjDestroy", "tjDecompressHeader3", "tjDecompress2", "tjGetErrorStr2", "tjGetErrorCode", "tjGetScalingFactors"} {
		if _, err := purego.Dlsym(h, sym); err != nil {
			return nil, fmt.Errorf("turbojpeg: %s lacks %s (libjpeg-turbo 2.0 or later needed)", path, sym)
		}
	}
	t = &TurboJPEG{path: path, file: mappedFile("libturbojpeg")}
	purego.RegisterLibFunc(&t.initDecompress, h, "tjInitDecompress")
	purego.RegisterLibFunc(&t.destroy, h, "tjDestroy")
	purego.RegisterLibFunc(&t.header3, h, "tjDecompressHeader3")
	purego.RegisterLibFunc(&t.decompress2, h, "tjDecompress2")
	purego.RegisterLibFunc(&t.errorStr2, h, "tjGetErrorStr2")
	purego.RegisterLibFunc(&t.errorCode, h, "tjGetErrorCode")
	// tjscalingfactor is {int num; int denom;}, in static storage.
	var scalingFactors func(n *int32) *[2]int32
	purego.RegisterLibFunc(&scalingFactors, h, "tjGetScalingFactors")
	var n int32
	p := scalingFactors(&n)
	if p == nil || n <= 0 || n > 64 {
		return nil, fmt.Errorf("turbojpeg: %s: no scaling factors", path)
	}
	for _, f := range unsafe.Slice(p, n) {
		num, den := int(f[0]), int(f[1])
		if num > 0 && den > 0 && num < den {
			t.scales = append(t.scales, scalingFactor{num, den})
		}
	}
	sortScales(t.scales)
	h0, err := t.newHandle()
	if err != nil {
		return nil, fmt.Errorf("turbojpeg: %s: %w", path, err)
	}
	t.put(h0)
	return t, nil
}

// sortScales orders the factors largest first.
func sortScales(s []scalingFactor) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].num*s[j-1].denom > s[j-1].num*s[j].denom; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Path is the path the library was loaded by.
func (t *TurboJPEG) Path() string { return t.path }

// File is the library's file as the dynamic loader found it (for example
// /usr/lib/x86_64-linux-gnu/libturbojpeg.so.0.2.0), else Path.
func (t *TurboJPEG) File() string {
	if t.file != "" {
		return t.file
	}
	return t.path
}

// mappedFile is the first file mapped into this process whose name holds
// name, from /proc/self/maps (Linux), or "".
func mappedFile(name string) string {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.Contains(f[len(f)-1], name) {
			return f[len(f)-1]
		}
	}
	return ""
}

// get takes a decompressor handle from the pool, or makes one.
func (t *TurboJPEG) get() (*tjHandle, error) {
	if h, ok := t.handles.Get().(*tjHandle); ok {
		return h, nil
	}
	return t.newHandle()
}

func (t *TurboJPEG) newHandle() (*tjHandle, error) {
	p := t.initDecompress()
	if p == 0 {
		return nil, errors.New("turbojpeg: tjInitDecompress failed")
	}
	h := &tjHandle{h: p}
	destroy := t.destroy
	h.cleanup = runtime.AddCleanup(h, func(p uintptr) { destroy(p) }, p)
	return h, nil
}

// put returns a handle to the pool after a successful call.
func (t *TurboJPEG) put(h *tjHandle) { t.handles.Put(h) }

// discard destroys a handle after a failed call: TurboJPEG can leave it in
// a state where the next header reads as 0x0.
func (t *TurboJPEG) discard(h *tjHandle) {
	h.cleanup.Stop()
	t.destroy(h.h)
	h.h = 0
}

// release puts h back after a call that returned err, or discards it.
func (t *TurboJPEG) release(h *tjHandle, err error) {
	if err != nil || h.warned {
		t.discard(h)
	} else {
		t.put(h)
	}
}

// jpegHeader is what tjDecompressHeader3 reports.
type jpegHeader struct {
	w, h       int
	subsamp    int
	colorspace int
}

func (t *TurboJPEG) header(h *tjHandle, data []byte) (jpegHeader, error) {
	var w, ht, ss, cs int32 = 0, 0, -1, -1
	rc := t.header3(h.h, &data[0], uintptr(len(data)), &w, &ht, &ss, &cs)
	runtime.KeepAlive(data)
	h.warned = h.warned || rc != 0
	// tjDecompressHeader3 fails on warnings (corrupt data libjpeg recovers
	// from, which PIL accepts) and on subsampling it has no name for
	// (which tjDecompress2 decodes): it has filled in the size then.
	if rc != 0 && (w <= 0 || ht <= 0 || cs < 0) {
		return jpegHeader{}, t.err(h, "read header")
	}
	if w <= 0 || ht <= 0 {
		return jpegHeader{}, fmt.Errorf("turbojpeg: bad size %dx%d", w, ht)
	}
	return jpegHeader{int(w), int(ht), int(ss), int(cs)}, nil
}

// decode decompresses data into dst (w*h*bpp bytes, pixel format pf) at
// the scaled size w x h. Warnings are errors when they mean the data ended
// early (PIL raises "image file is truncated"); other warnings (corrupt
// data libjpeg recovered from) are accepted, as PIL accepts them.
func (t *TurboJPEG) decode(h *tjHandle, data []byte, dst []byte, w, ht, bpp, pf int) error {
	if len(dst) < w*ht*bpp {
		return fmt.Errorf("turbojpeg: buffer too small")
	}
	rc := t.decompress2(h.h, &data[0], uintptr(len(data)), &dst[0], int32(w), int32(w*bpp), int32(ht), int32(pf), tjFlags)
	runtime.KeepAlive(data)
	runtime.KeepAlive(dst)
	if rc != 0 {
		if t.errorCode(h.h) == tjerrWarning {
			msg := t.errorStr2(h.h)
			if !strings.Contains(msg, "Premature end") {
				h.warned = true
				return nil
			}
			return fmt.Errorf("turbojpeg: truncated JPEG: %s", msg)
		}
		return t.err(h, "decode")
	}
	return nil
}

func (t *TurboJPEG) err(h *tjHandle, op string) error {
	return fmt.Errorf("turbojpeg: %s: %s", op, t.errorStr2(h.h))
}
