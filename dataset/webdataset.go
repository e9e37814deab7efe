package dataset

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"gocloud.dev/blob"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/location"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
)

// listWebDataset indexes WebDataset tar shards: every *.tar under the URL in
// natural order, each holding samples as members <key>.<ext> that share a
// key: an image (.jpg, .jpeg, .png) and optionally its class (.cls, the
// label as decimal text). Only tar headers and .cls members are read; image
// bytes are located by offset, and read by range when scored.
func listWebDataset(ctx context.Context, s job.Dataset) (*Listing, error) {
	r, err := openImages(ctx, s, shapeUnknown, "")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	tars, err := r.filesWithSuffix(ctx, ".tar")
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	for _, t := range tars {
		if err := indexTar(ctx, r.b, r.root, t, l); err != nil {
			return nil, err
		}
	}
	if len(l.Rows) == 0 {
		return nil, badData("%s: no images in its tar shards", r.root)
	}
	return l, r.setShape(ctx, l)
}

// filesWithSuffix lists the objects under the dataset URL whose names end
// in suffix, in natural order; none is an error.
func (r *imageReader) filesWithSuffix(ctx context.Context, suffix string) ([]string, error) {
	var files []string
	err := storage.List(ctx, r.b, nil, func(obj *blob.ListObject) error {
		if !obj.IsDir && strings.HasSuffix(obj.Key, suffix) {
			files = append(files, obj.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", r.root, err)
	}
	if len(files) == 0 {
		return nil, badData("%s: no *%s files", r.root, suffix)
	}
	sort.Slice(files, func(i, j int) bool { return shard.NaturalLess(files[i], files[j]) })
	return files, nil
}

func indexTar(ctx context.Context, b *blob.Bucket, root location.Location, key string, l *Listing) error {
	name := root.Join(key).String()
	attrs, err := b.Attributes(ctx, key)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	src := &rangeSeeker{ctx: ctx, b: b, key: key, size: attrs.Size}
	tr := tar.NewReader(src)
	type sample struct {
		row      job.IndexRow
		hasImage bool
	}
	var order []string
	samples := map[string]*sample{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return badData("%s: corrupt tar: %v", name, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size < 0 || h.Size > attrs.Size-src.pos {
			return badData("%s: member %s claims %d bytes, the tar holds %d after it", name, h.Name, h.Size, attrs.Size-src.pos)
		}
		dir, base := path.Split(h.Name)
		stem, ext, ok := strings.Cut(base, ".")
		if !ok {
			continue
		}
		id := dir + stem
		sm := samples[id]
		if sm == nil {
			sm = &sample{row: job.IndexRow{ExampleID: key + "/" + id, Label: -1, Source: key}}
			samples[id] = sm
			order = append(order, id)
		}
		switch strings.ToLower(ext) {
		case "jpg", "jpeg", "png":
			sm.row.Offset, sm.row.Size, sm.hasImage = src.pos, h.Size, true
		case "cls":
			text, err := io.ReadAll(io.LimitReader(tr, 64))
			if err != nil {
				return badData("%s: %s: %v", name, h.Name, err)
			}
			y, err := strconv.ParseInt(strings.TrimSpace(string(text)), 10, 32)
			if err != nil {
				return badData("%s: %s: class %q is not an integer", name, h.Name, text)
			}
			sm.row.Label = int32(y)
		}
	}
	for _, id := range order {
		if sm := samples[id]; sm.hasImage {
			sm.row.Index = int64(len(l.Rows))
			l.Rows = append(l.Rows, sm.row)
		}
	}
	return nil
}

// rangeSeeker reads an object through ranged reads of up to 1 MiB, and
// seeks without reading: archive/tar seeks over member data it skips.
type rangeSeeker struct {
	ctx       context.Context
	b         *blob.Bucket
	key       string
	size, pos int64
	buf       []byte
	bufAt     int64
}

func (r *rangeSeeker) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if r.pos < r.bufAt || r.pos >= r.bufAt+int64(len(r.buf)) {
		n := min(int64(1<<20), r.size-r.pos)
		rr, err := storage.NewReader(r.ctx, r.b, r.key, r.pos, n)
		if err != nil {
			return 0, err
		}
		r.buf, err = io.ReadAll(rr)
		rr.Close()
		if err != nil {
			return 0, err
		}
		r.bufAt = r.pos
		if len(r.buf) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
	}
	k := copy(p, r.buf[r.pos-r.bufAt:])
	r.pos += int64(k)
	return k, nil
}

func (r *rangeSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	}
	if offset < 0 {
		return 0, errors.New("seek before the start")
	}
	r.pos = offset
	return offset, nil
}
