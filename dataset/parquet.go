package dataset

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/storage"
)

// hfMeta and hfImage are the columns vog reads from a Parquet dataset in
// the Hugging Face layout: an image struct of encoded bytes and a path, and
// an integer label. Reading a subset of the columns reads only those.
type hfMeta struct {
	Image struct {
		Path string `parquet:"path,optional"`
	} `parquet:"image"`
	Label int64 `parquet:"label"`
}

type hfImage struct {
	Image struct {
		Bytes []byte `parquet:"bytes,optional"`
	} `parquet:"image"`
}

// listParquet indexes Parquet files in the Hugging Face image layout. The
// example id is the image's path where it has one, else <file>/<row>.
func listParquet(ctx context.Context, s job.Dataset) (*Listing, error) {
	r, err := openImages(ctx, s, shapeUnknown, "")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	files, err := r.filesWithSuffix(ctx, ".parquet")
	if err != nil {
		return nil, err
	}
	l := &Listing{}
	for _, f := range files {
		rows, err := storage.ReadParquet[hfMeta](ctx, r.b, f, 0, -1)
		if err != nil {
			return nil, badData("%s: not a Parquet file with columns image.path and label: %v", r.root.Join(f), err)
		}
		for i, m := range rows {
			if m.Label < -1 || m.Label > math.MaxInt32 {
				return nil, badData("%s: row %d: label %d is not a class index", r.root.Join(f), i, m.Label)
			}
			id := m.Image.Path
			if id == "" {
				id = strings.TrimPrefix(f+"/"+strconv.Itoa(i), "/")
			}
			l.Rows = append(l.Rows, job.IndexRow{
				Index: int64(len(l.Rows)), ExampleID: id, Label: int32(m.Label), Source: f, Offset: int64(i),
			})
		}
	}
	if len(l.Rows) == 0 {
		return nil, badData("%s: no rows", r.root)
	}
	return l, r.setShape(ctx, l)
}

func (r *imageReader) parquetName(row job.IndexRow) string {
	return r.root.Join(row.Source).String() + "#row" + strconv.FormatInt(row.Offset, 10)
}

// parquetBytes reads the encoded images of rows, one ranged read per run of
// consecutive rows of a file (a shard's rows are mostly one run).
func (r *imageReader) parquetBytes(ctx context.Context, rows []job.IndexRow) ([][]byte, error) {
	out := make([][]byte, len(rows))
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && rows[j].Source == rows[i].Source && rows[j].Offset == rows[j-1].Offset+1 {
			j++
		}
		run, err := storage.ReadParquet[hfImage](ctx, r.b, rows[i].Source, rows[i].Offset, int64(j-i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.parquetName(rows[i]), err)
		}
		if len(run) != j-i {
			return nil, badData("%s: no such row", r.parquetName(rows[i+len(run)]))
		}
		for k, img := range run {
			out[i+k] = img.Image.Bytes
		}
		i = j
	}
	return out, nil
}
