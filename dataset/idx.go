package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"

	"gocloud.dev/gcerrors"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/storage"
)

// idxFile is an open IDX file: its location, dims and a reader positioned
// at the first data byte; size is the file's size where it is not gzipped.
type idxFile struct {
	name string
	dims []int
	r    io.Reader
	size int64
	done func() error
}

// maxIDXBytes bounds the data an IDX header may claim: 64 GiB, far beyond
// any dataset in that format, and far below what overflows.
const maxIDXBytes = 1 << 36

// openIDXFile opens <prefix>-<kind>-idx<ndim>-ubyte, gzipped or plain.
func openIDXFile(ctx context.Context, prefix location.Location, kind string, ndim int) (*idxFile, error) {
	b, err := storage.Open(ctx, prefix)
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s-%s-idx%d-ubyte", prefix.Key, kind, ndim)
	var rc *storage.Reader
	name := ""
	for _, key := range []string{base + ".gz", base} {
		rc, err = storage.NewReader(ctx, b, key, 0, -1)
		if err == nil {
			name = location.Location{BucketURL: prefix.BucketURL, Key: key}.String()
			break
		}
		if gcerrors.Code(err) != gcerrors.NotFound {
			b.Close()
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if rc == nil {
		b.Close()
		return nil, badData("%s[.gz]: no such file", location.Location{BucketURL: prefix.BucketURL, Key: base})
	}
	closeAll := func() error { rc.Close(); return b.Close() }
	br := bufio.NewReaderSize(rc, 1<<20)
	var r io.Reader = br
	size := rc.Size()
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		size = -1
		zr, err := gzip.NewReader(br)
		if err != nil {
			closeAll()
			return nil, badData("%s: %v", name, err)
		}
		r = zr
	}
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		closeAll()
		return nil, badData("%s: reading IDX header: %v", name, err)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || int(head[3]) != ndim {
		closeAll()
		return nil, badData("%s: not an IDX file of unsigned bytes with %d dimensions (magic % x)", name, ndim, head)
	}
	dims := make([]int, ndim)
	for i := range dims {
		var d uint32
		if err := binary.Read(r, binary.BigEndian, &d); err != nil {
			closeAll()
			return nil, badData("%s: reading IDX dimensions: %v", name, err)
		}
		dims[i] = int(d)
	}
	f := &idxFile{name: name, dims: dims, r: r, size: size, done: closeAll}
	if _, err := f.dataLen(); err != nil {
		closeAll()
		return nil, err
	}
	return f, nil
}

// dataLen returns the bytes of data the header claims, checked against
// the file's size where it is known and against maxIDXBytes: nothing is
// allocated from a header's claims. An item (an image) must hold at least
// one byte, and alone fit in maxIDXBytes, even where the count is 0.
func (f *idxFile) dataLen() (int64, error) {
	n := int64(1)
	for i := len(f.dims) - 1; i >= 0; i-- { // the item's dimensions first, then the count
		if i > 0 && f.dims[i] == 0 {
			return 0, badData("%s: header claims dimensions %v: items of no bytes", f.name, f.dims)
		}
		if n *= int64(f.dims[i]); n > maxIDXBytes {
			return 0, badData("%s: header claims dimensions %v, beyond %d bytes", f.name, f.dims, int64(maxIDXBytes))
		}
	}
	if head := int64(4 + 4*len(f.dims)); f.size >= 0 && n > f.size-head {
		return 0, badData("%s: truncated: header promises %d bytes of data, file holds %d", f.name, n, f.size-head)
	}
	return n, nil
}

// readAll reads the file's data, checking its length against its header.
// A gzipped file's data is read as it comes, never sized from the header.
func (f *idxFile) readAll() ([]byte, error) {
	n, err := f.dataLen()
	if err != nil {
		return nil, err
	}
	var data []byte
	if f.size >= 0 {
		data = make([]byte, n) // within the file's size, checked
		if got, err := io.ReadFull(f.r, data); err != nil {
			return nil, badData("%s: truncated: header promises %d bytes of data, file holds %d (%v)", f.name, n, got, err)
		}
	} else if data, err = io.ReadAll(io.LimitReader(f.r, n)); err != nil || int64(len(data)) != n {
		return nil, badData("%s: truncated: header promises %d bytes of data, file holds %d (%v)", f.name, n, len(data), err)
	}
	// Reading on to EOF checks the gzip checksum.
	if extra, err := io.Copy(io.Discard, f.r); err != nil {
		return nil, badData("%s: %v", f.name, err)
	} else if extra != 0 {
		return nil, badData("%s: %d bytes after the data its header describes", f.name, extra)
	}
	return data, nil
}

func readLabels(ctx context.Context, prefix location.Location) ([]byte, string, error) {
	f, err := openIDXFile(ctx, prefix, "labels", 1)
	if err != nil {
		return nil, "", err
	}
	defer f.done()
	labels, err := f.readAll()
	return labels, f.name, err
}

func listIDX(ctx context.Context, s job.Dataset) (*Listing, error) {
	if s.Resize != 0 || s.Crop != 0 {
		return nil, errors.New("--resize and --crop apply to imagefolder datasets, not idx")
	}
	prefix, err := location.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	labels, labelsName, err := readLabels(ctx, prefix)
	if err != nil {
		return nil, err
	}
	img, err := openIDXFile(ctx, prefix, "images", 3)
	if err != nil {
		return nil, err
	}
	img.done()
	if img.dims[0] == 0 {
		return nil, badData("%s: no images", img.name)
	}
	if img.dims[0] != len(labels) {
		return nil, badData("%s holds %d images but %s holds %d labels", img.name, img.dims[0], labelsName, len(labels))
	}
	l := &Listing{
		Rows:  make([]job.IndexRow, len(labels)),
		Shape: engine.Shape{C: s.ChannelCount(), H: img.dims[1], W: img.dims[2]},
	}
	for i, y := range labels {
		l.Rows[i] = job.IndexRow{Index: int64(i), ExampleID: strconv.Itoa(i), Label: int32(y)}
	}
	return l, nil
}

// idxReader holds a whole IDX image file in memory: MNIST-sized data sets
// are tens of megabytes, and workers reuse it across shards.
type idxReader struct {
	s     job.Dataset
	name  string
	shape engine.Shape
	count int
	data  []byte
}

func openIDX(ctx context.Context, s job.Dataset, shape engine.Shape) (*idxReader, error) {
	prefix, err := location.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	f, err := openIDXFile(ctx, prefix, "images", 3)
	if err != nil {
		return nil, err
	}
	defer f.done()
	if f.dims[1] != shape.H || f.dims[2] != shape.W {
		return nil, badData("%s: images are %dx%d, the job expects %dx%d", f.name, f.dims[1], f.dims[2], shape.H, shape.W)
	}
	data, err := f.readAll()
	if err != nil {
		return nil, err
	}
	return &idxReader{s: s, name: f.name, shape: shape, count: f.dims[0], data: data}, nil
}

func (r *idxReader) Read(ctx context.Context, rows []job.IndexRow, dst []float32, bad []error) error {
	hw, d := r.shape.Pixels(), r.shape.Len()
	for i, row := range rows {
		if row.Index < 0 || int(row.Index) >= r.count {
			return badData("%s: example %d out of range (%d images)", r.name, row.Index, r.count)
		}
		src := r.data[int(row.Index)*hw : int(row.Index+1)*hw]
		x := dst[i*d : (i+1)*d]
		for c := range r.shape.C {
			plane := x[c*hw : (c+1)*hw]
			for j, v := range src {
				plane[j] = float32(v) / 255
			}
		}
		normalize(r.s.Preprocess, x, r.shape)
	}
	return nil
}

func (r *idxReader) Close() error { return nil }
