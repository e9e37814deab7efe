package storage

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"

	"github.com/vogscore/vog/score"
)

// Partial moments files hold, for each example of a shard, the per-pixel
// moments of its input gradient over one group of checkpoints
// (--checkpoint-group), so that a shard reduce can merge the groups with the
// parallel variance formula. Layout, little-endian:
//
//	header  "VOGM", version u16 (2), reserved u16, pixels u32, examples u32,
//	        group u32, checkpoints in the group u32, the group's fingerprint
//	        (job.Job.GroupFingerprint, 24 bytes of ASCII hex)
//	record  index i64, target i32, pred i32 (-1 unless the group holds the
//	        job's last checkpoint), failure length u16 and that many bytes
//	        (the example's failure, "kind: message"; 0: none), mean f32 x
//	        pixels, M2 f32 x pixels, then per checkpoint of the group: the
//	        label's probability, margin, loss, EL2N, the gradient's L2
//	        norm, correct (0 or 1), each f32
//	trailer CRC-32 (IEEE) of everything before it, u32
//
// Records follow the shard's example order. float32 keeps files half the
// size; merged VoG stays within 1e-5 relative of the single pass.
const momentsVersion = 2

// fingerprintLen is the length of a job fingerprint (job.Fingerprint).
const fingerprintLen = 24

// MomentsBytes is the size of a partial moments file of examples records
// over pixels pixels and checkpoints checkpoints, none of them failed (a
// failure adds its message's length): the header and checksum, 52 bytes,
// and per record 18 bytes of index, labels and failure length, 8 bytes a
// pixel (mean and M2) and 24 a checkpoint (its six scores).
func MomentsBytes(examples int64, pixels, checkpoints int) int64 {
	return 24 + fingerprintLen + 4 + examples*(18+8*int64(pixels)+24*int64(checkpoints))
}

var momentsMagic = [4]byte{'V', 'O', 'G', 'M'}

// ErrCorruptMoments marks a partial moments file that is truncated, altered
// or of another version: the shard group must be computed again.
var ErrCorruptMoments = errors.New("corrupt partial moments")

// MomentsHeader describes a partial moments file.
type MomentsHeader struct {
	Pixels, Examples, Group, Checkpoints int
	// Fingerprint is the group's (job.Job.GroupFingerprint): moments of
	// other data, checkpoints or settings are not merged.
	Fingerprint string
}

// MomentsRecord is one example's partial moments, and what each checkpoint
// of the group said of it.
type MomentsRecord struct {
	Index        int64
	Target, Pred int32
	// Failure, where not empty, is why the example cannot be scored (its
	// moments are then meaningless): "kind: message".
	Failure   string
	N         int64
	Mean, M2  []float64
	Logits    []score.Logits
	GradNorms []float64
}

// MomentsWriter writes a partial moments file.
type MomentsWriter struct {
	w       *bufio.Writer
	crc     hash.Hash32
	h       MomentsHeader
	written int
	buf     []byte
}

// NewMomentsWriter writes the header of a partial moments file to w.
func NewMomentsWriter(w io.Writer, h MomentsHeader) (*MomentsWriter, error) {
	crc := crc32.NewIEEE()
	mw := &MomentsWriter{w: bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20), crc: crc, h: h}
	if len(h.Fingerprint) != fingerprintLen {
		return nil, fmt.Errorf("storage: moments of job %q: not a fingerprint", h.Fingerprint)
	}
	head := append(momentsMagic[:], 0, 0, 0, 0)
	binary.LittleEndian.PutUint16(head[4:], momentsVersion)
	for _, v := range []int{h.Pixels, h.Examples, h.Group, h.Checkpoints} {
		head = binary.LittleEndian.AppendUint32(head, uint32(v))
	}
	head = append(head, h.Fingerprint...)
	_, err := mw.w.Write(head)
	return mw, err
}

// Write appends one example's moments; they must have N equal to the
// group's checkpoint count and one value per pixel.
func (mw *MomentsWriter) Write(rec MomentsRecord) error {
	if len(rec.Mean) != mw.h.Pixels || len(rec.M2) != mw.h.Pixels || rec.N != int64(mw.h.Checkpoints) ||
		len(rec.Logits) != mw.h.Checkpoints || len(rec.GradNorms) != mw.h.Checkpoints {
		return fmt.Errorf("storage: moments record of %d/%d pixels over %d checkpoints, file holds %d over %d",
			len(rec.Mean), len(rec.M2), rec.N, mw.h.Pixels, mw.h.Checkpoints)
	}
	if mw.written == mw.h.Examples {
		return fmt.Errorf("storage: moments file holds %d examples", mw.h.Examples)
	}
	b := mw.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, uint64(rec.Index))
	b = binary.LittleEndian.AppendUint32(b, uint32(rec.Target))
	b = binary.LittleEndian.AppendUint32(b, uint32(rec.Pred))
	fail := rec.Failure[:min(len(rec.Failure), math.MaxUint16)]
	b = binary.LittleEndian.AppendUint16(b, uint16(len(fail)))
	b = append(b, fail...)
	for _, v := range rec.Mean {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	for _, v := range rec.M2 {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	}
	for j, l := range rec.Logits {
		correct := 0.0
		if l.Correct {
			correct = 1
		}
		for _, v := range []float64{l.PLabel, l.Margin, l.Loss, l.EL2N, rec.GradNorms[j], correct} {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		}
	}
	mw.buf = b
	mw.written++
	_, err := mw.w.Write(b)
	return err
}

// Close writes the checksum. It does not close the underlying writer.
func (mw *MomentsWriter) Close() error {
	if mw.written != mw.h.Examples {
		return fmt.Errorf("storage: moments file got %d of its %d examples", mw.written, mw.h.Examples)
	}
	if err := mw.w.Flush(); err != nil { // the checksum covers all before it
		return err
	}
	if err := binary.Write(mw.w, binary.LittleEndian, mw.crc.Sum32()); err != nil {
		return err
	}
	return mw.w.Flush()
}

// MomentsReader reads a partial moments file.
type MomentsReader struct {
	r      *bufio.Reader
	crc    hash.Hash32
	Header MomentsHeader
	read   int
	buf    []byte
}

// NewMomentsReader reads the header of a partial moments file.
func NewMomentsReader(r io.Reader) (*MomentsReader, error) {
	crc := crc32.NewIEEE()
	mr := &MomentsReader{r: bufio.NewReaderSize(r, 1<<20), crc: crc}
	head := make([]byte, 24+fingerprintLen)
	if err := mr.full(head); err != nil {
		return nil, err
	}
	if [4]byte(head[:4]) != momentsMagic || binary.LittleEndian.Uint16(head[4:]) != momentsVersion {
		return nil, fmt.Errorf("%w: not a version %d moments file", ErrCorruptMoments, momentsVersion)
	}
	u := func(i int) int { return int(binary.LittleEndian.Uint32(head[8+4*i:])) }
	mr.Header = MomentsHeader{Pixels: u(0), Examples: u(1), Group: u(2), Checkpoints: u(3), Fingerprint: string(head[24:])}
	if mr.Header.Pixels <= 0 || mr.Header.Pixels > 1<<24 || mr.Header.Checkpoints <= 0 {
		return nil, fmt.Errorf("%w: header %+v", ErrCorruptMoments, mr.Header)
	}
	if mr.Header.Checkpoints > 1<<16 {
		return nil, fmt.Errorf("%w: header %+v", ErrCorruptMoments, mr.Header)
	}
	mr.buf = make([]byte, 8*mr.Header.Pixels+24*mr.Header.Checkpoints)
	return mr, nil
}

func (mr *MomentsReader) full(b []byte) error {
	if _, err := io.ReadFull(mr.r, b); err != nil {
		return fmt.Errorf("%w: truncated: %v", ErrCorruptMoments, err)
	}
	mr.crc.Write(b)
	return nil
}

// Next reads the next record into rec, reusing its slices. After the last
// record it checks the checksum and returns io.EOF.
func (mr *MomentsReader) Next(rec *MomentsRecord) error {
	if mr.read == mr.Header.Examples {
		want := mr.crc.Sum32()
		var got [4]byte
		if _, err := io.ReadFull(mr.r, got[:]); err != nil {
			return fmt.Errorf("%w: no checksum: %v", ErrCorruptMoments, err)
		}
		if binary.LittleEndian.Uint32(got[:]) != want {
			return fmt.Errorf("%w: checksum mismatch", ErrCorruptMoments)
		}
		if _, err := mr.r.ReadByte(); err != io.EOF {
			return fmt.Errorf("%w: data after the checksum", ErrCorruptMoments)
		}
		return io.EOF
	}
	var head [18]byte
	if err := mr.full(head[:]); err != nil {
		return err
	}
	rec.Index = int64(binary.LittleEndian.Uint64(head[:]))
	rec.Target = int32(binary.LittleEndian.Uint32(head[8:]))
	rec.Pred = int32(binary.LittleEndian.Uint32(head[12:]))
	rec.Failure = ""
	if n := binary.LittleEndian.Uint16(head[16:]); n > 0 {
		fail := make([]byte, n) // at most 64 KiB
		if err := mr.full(fail); err != nil {
			return err
		}
		rec.Failure = string(fail)
	}
	if err := mr.full(mr.buf); err != nil {
		return err
	}
	b, p := mr.buf, mr.Header.Pixels
	rec.N = int64(mr.Header.Checkpoints)
	if len(rec.Mean) != p {
		rec.Mean, rec.M2 = make([]float64, p), make([]float64, p)
	}
	for i := range p {
		rec.Mean[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		rec.M2[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*(p+i):])))
	}
	k := mr.Header.Checkpoints
	rec.Logits, rec.GradNorms = rec.Logits[:0], rec.GradNorms[:0]
	f := func(j int) float64 { return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*p+4*j:]))) }
	for j := range k {
		v := 6 * j
		rec.Logits = append(rec.Logits, score.Logits{PLabel: f(v), Margin: f(v + 1), Loss: f(v + 2), EL2N: f(v + 3), Correct: f(v+5) == 1})
		rec.GradNorms = append(rec.GradNorms, f(v+4))
	}
	mr.read++
	return nil
}

// Moments returns rec as score.PixelMoments sharing its slices.
func (rec *MomentsRecord) Moments() *score.PixelMoments {
	return &score.PixelMoments{N: rec.N, Mean: rec.Mean, M2: rec.M2}
}
