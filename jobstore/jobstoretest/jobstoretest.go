// Package jobstoretest is the conformance suite of jobstore.Store, in the
// style of gocloud.dev's drivertest: RunConformance runs the same tests on
// any backend (memblob, fileblob, and S3, GCS and Azure servers), through
// the Store, so that what a job relies on of its --out is checked where
// it will run: job.json created by exactly one of two planners (a
// conditional write), ranged reads, listing, and artefacts of another job
// refused by their fingerprints.
package jobstoretest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vogscore/vog/job"
	"github.com/vogscore/vog/jobstore"
	"github.com/vogscore/vog/score"
	"github.com/vogscore/vog/shard"
	"github.com/vogscore/vog/storage"
	"github.com/vogscore/vog/window"
)

// RunConformance runs the suite. open returns a Store on a new, empty
// output location of the backend, opened as vog opens --out (for a local
// folder, jobstore.Create); the test closes it.
func RunConformance(t *testing.T, open func(t *testing.T) *jobstore.Store) {
	t.Run("CreateJob", func(t *testing.T) { testCreateJob(t, open) })
	t.Run("CreateJobRace", func(t *testing.T) { testCreateJobRace(t, open) })
	t.Run("Load", func(t *testing.T) { testLoad(t, open(t)) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, open(t)) })
	t.Run("Index", func(t *testing.T) { testIndex(t, open(t)) })
	t.Run("Shard", func(t *testing.T) { testShard(t, open(t)) })
	t.Run("Group", func(t *testing.T) { testGroup(t, open(t)) })
	t.Run("Result", func(t *testing.T) { testResult(t, open(t)) })
	t.Run("RemoveOutputs", func(t *testing.T) { testRemoveOutputs(t, open(t)) })
}

// Job returns a sealed job of 25 examples in 3 shards of a 2x2 image,
// with 3 checkpoints in groups of 2: dataset names it, and jobs of other
// names have other fingerprints and group fingerprints.
func Job(t testing.TB, dataset string) *job.Job {
	t.Helper()
	j := &job.Job{
		Spec: job.Spec{
			Dataset:         job.Dataset{Format: "idx", URL: "mem://data/" + dataset},
			ShardSize:       10,
			BatchSize:       5,
			CheckpointGroup: 2,
		},
		Shape:       job.Shape{C: 1, H: 2, W: 2},
		Windows:     []window.Window{{Name: window.All, Lo: 0, Hi: 3}},
		Examples:    25,
		IndexSHA256: fmt.Sprintf("%064x", len(dataset)) + dataset,
		Version:     job.Version,
	}
	for i := range 3 {
		j.Checkpoints = append(j.Checkpoints, job.Checkpoint{URL: fmt.Sprintf("mem://ckpt/%d.pt", i), SHA256: fmt.Sprintf("%s-%d", dataset, i)})
	}
	j.Shards = j.Layout().Shards()
	if err := j.Seal(); err != nil {
		t.Fatal(err)
	}
	return j
}

// closed registers the Store's Close.
func closed(t *testing.T, s *jobstore.Store) *jobstore.Store {
	t.Cleanup(func() { s.Close() })
	return s
}

// refused fails unless err is marked mark and names every string of want.
func refused(t *testing.T, what string, err, mark error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if mark != nil && !errors.Is(err, mark) {
		t.Errorf("%s: %v, not %v", what, err, mark)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not name %q", what, err, w)
		}
	}
}

func testCreateJob(t *testing.T, open func(t *testing.T) *jobstore.Store) {
	ctx := t.Context()
	s := closed(t, open(t))
	if j, err := s.ReadJob(ctx); j != nil || err != nil {
		t.Fatalf("an empty location's job: %v, %v", j, err)
	}
	a, b := Job(t, "a"), Job(t, "b")
	if old, err := s.CreateJob(ctx, a); old != nil || err != nil {
		t.Fatalf("first CreateJob: %v, %v", old, err)
	}
	if s.Job() != a {
		t.Fatal("the created job is not bound")
	}
	// The same job again: the one there, bound.
	if old, err := s.CreateJob(ctx, Job(t, "a")); err != nil || old == nil || old.Fingerprint != a.Fingerprint {
		t.Fatalf("CreateJob of the same job: %v, %v", old, err)
	}
	// Another job: the one there, nothing written, nothing bound.
	s.Bind(nil)
	old, err := s.CreateJob(ctx, b)
	if err != nil || old == nil || old.Fingerprint != a.Fingerprint || s.Job() != nil {
		t.Fatalf("CreateJob of another job: %v, %v (bound %v)", old, err, s.Job())
	}
	if got, err := s.ReadJob(ctx); err != nil || got.Fingerprint != a.Fingerprint || got.Verify() != nil {
		t.Fatalf("job.json after a refused create: %v, %v", got, err)
	}
}

// testCreateJobRace plans several jobs into one location at once, several
// times: exactly one creates job.json, and every other gets the winner's.
func testCreateJobRace(t *testing.T, open func(t *testing.T) *jobstore.Store) {
	const rounds, planners = 10, 6
	for round := range rounds {
		s := closed(t, open(t))
		jobs := make([]*job.Job, planners)
		for i := range jobs {
			jobs[i] = Job(t, fmt.Sprintf("r%d-%d", round, i))
		}
		olds := make([]*job.Job, len(jobs))
		errs := make([]error, len(jobs))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, j := range jobs {
			wg.Go(func() {
				<-start
				olds[i], errs[i] = s.CreateJob(t.Context(), j)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, old := range olds {
			if errs[i] != nil {
				t.Fatalf("round %d, planner %d: %v", round, i, errs[i])
			}
			if old == nil {
				if winner >= 0 {
					t.Fatalf("round %d: planners %d and %d both created job.json", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no planner created job.json", round)
		}
		for i, old := range olds {
			if i != winner && old.Fingerprint != jobs[winner].Fingerprint {
				t.Fatalf("round %d: planner %d got %s, the winner's is %s", round, i, old.Fingerprint, jobs[winner].Fingerprint)
			}
		}
		if got, err := s.ReadJob(t.Context()); err != nil || got.Fingerprint != jobs[winner].Fingerprint {
			t.Fatalf("round %d: job.json is %v (%v), the winner's %s", round, got, err, jobs[winner].Fingerprint)
		}
	}
}

func testLoad(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a := Job(t, "a")
	ref := job.Ref{Out: s.String(), Fingerprint: a.Fingerprint}
	_, err := s.Load(ctx, ref)
	refused(t, "Load with no job.json", err, job.ErrBadJob, "no job.json")
	if _, err := s.CreateJob(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Bind(nil)
	if j, err := s.Load(ctx, ref); err != nil || j.Fingerprint != a.Fingerprint || s.Job() != j {
		t.Fatalf("Load: %v, %v", j, err)
	}
	other := job.Ref{Out: s.String(), Fingerprint: Job(t, "b").Fingerprint}
	_, err = s.Load(ctx, other)
	refused(t, "Load of another fingerprint", err, job.ErrBadJob, a.Fingerprint, other.Fingerprint)

	// A job.json edited after planning: its content no longer hashes to
	// its fingerprint.
	if err := s.RemoveOutputs(ctx, nil); err != nil {
		t.Fatal(err)
	}
	e := *a
	e.Examples++
	if _, err := s.CreateJob(ctx, &e); err != nil {
		t.Fatal(err)
	}
	_, err = s.Load(ctx, ref)
	refused(t, "Load of an edited job.json", err, job.ErrBadJob, "does not match its fingerprint")
}

func testWatch(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	w := Job(t, "w")
	if j, err := s.ReadWatch(ctx); j != nil || err != nil {
		t.Fatalf("no watch.json: %v, %v", j, err)
	}
	if err := s.WriteWatch(ctx, w); err != nil {
		t.Fatal(err)
	}
	if j, err := s.Watch(ctx, w.Fingerprint); err != nil || len(j.Checkpoints) != 3 {
		t.Fatalf("Watch: %v, %v", j, err)
	}
	_, err := s.Watch(ctx, "another")
	refused(t, "Watch of another fingerprint", err, job.ErrBadJob, "watch.json", "another")
	// A watch's job with its first two checkpoints, one window over them.
	j, err := s.Load(ctx, job.Ref{Out: s.String(), Fingerprint: w.Fingerprint, Watch: 2})
	if err != nil || len(j.Checkpoints) != 2 || len(j.Windows) != 1 || j.Windows[0].Hi != 2 {
		t.Fatalf("Load of a watch's first 2 checkpoints: %+v, %v", j, err)
	}
	_, err = s.Load(ctx, job.Ref{Out: s.String(), Fingerprint: w.Fingerprint, Watch: 4})
	refused(t, "Load of more checkpoints than the watch holds", err, nil, "holds 3 checkpoints, not yet 4")
}

func indexRows(j *job.Job) []job.IndexRow {
	rows := make([]job.IndexRow, j.Examples)
	for i := range rows {
		rows[i] = job.IndexRow{Index: int64(i), ExampleID: fmt.Sprintf("img/%05d.png", i), Label: int32(i % 3)}
	}
	return rows
}

// testIndex writes an index and reads each shard's slice of it by ranged
// reads; a job of another dataset refuses it.
func testIndex(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a := Job(t, "a")
	s.Bind(a)
	if ok, err := s.IndexCurrent(ctx); ok || err != nil {
		t.Fatalf("IndexCurrent with no index: %v, %v", ok, err)
	}
	rows := indexRows(a)
	if err := s.WriteIndex(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.IndexCurrent(ctx); !ok || err != nil {
		t.Fatalf("IndexCurrent: %v, %v", ok, err)
	}
	for i := range a.Shards {
		r := a.Layout().Nth(i)
		got, err := s.Index(ctx, r)
		if err != nil || !slices.Equal(got, rows[r.Start:r.End]) {
			t.Fatalf("shard %d's slice [%d, %d): %d rows, %v", i, r.Start, r.End, len(got), err)
		}
	}
	if got, err := s.Index(ctx, shard.Range{Start: a.Examples, End: a.Examples + 3}); err != nil || len(got) != 0 {
		t.Fatalf("a slice past the end: %d rows, %v", len(got), err)
	}
	b := Job(t, "b")
	s.Bind(b)
	if ok, err := s.IndexCurrent(ctx); ok || err != nil {
		t.Fatalf("IndexCurrent of another dataset's index: %v, %v", ok, err)
	}
	_, err := s.Index(ctx, a.Layout().Nth(0))
	refused(t, "Index of another dataset's", err, job.ErrBadData, jobstore.IndexKey, a.IndexSHA256, b.IndexSHA256)
}

// shardOf returns rows, failures and class sums for shard i of j.
func shardOf(j *job.Job, i int) ([]job.ScoreRow, []job.FailureRow, []job.ShardClassRow) {
	r := j.Layout().Nth(i)
	var rows []job.ScoreRow
	var failures []job.FailureRow
	for x := r.Start; x < r.End; x++ {
		if x%7 == 3 {
			failures = append(failures, job.FailureRow{Index: x, ExampleID: fmt.Sprint(x), Shard: int32(i), Kind: job.FailCorrupt, Reason: "bad"})
			continue
		}
		rows = append(rows, job.ScoreRow{Index: x, ExampleID: fmt.Sprint(x), Label: int32(x % 3), Class: int32(x % 3), Window: window.All, VoG: float64(x) / 3})
	}
	classes := []job.ShardClassRow{{Window: window.All, Class: 0, Moments: "1 0x1p+0 0x1p+0"}}
	return rows, failures, classes
}

// testShard: a shard is done once its files are written and verify; for
// another job, or with a file of another size, it is not; another job's
// files are refused naming both fingerprints.
func testShard(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a, b := Job(t, "a"), Job(t, "b")
	s.Bind(a)
	if st, err := s.ShardDone(ctx, 1); st.Done || st.Why != "" || err != nil {
		t.Fatalf("ShardDone of nothing: %+v, %v", st, err)
	}
	rows, failures, classes := shardOf(a, 1)
	if err := s.WriteShard(ctx, 1, rows, failures, classes); err != nil {
		t.Fatal(err)
	}
	st, err := s.ShardDone(ctx, 1)
	if err != nil || !st.Done || !slices.Equal(st.Failures, failures) {
		t.Fatalf("ShardDone: %+v, %v", st, err)
	}
	if got, err := s.ShardRows(ctx, 1); err != nil || !slices.Equal(got, rows) {
		t.Fatalf("ShardRows: %d rows, %v", len(got), err)
	}
	if got, err := s.ShardFailures(ctx, 1); err != nil || !slices.Equal(got, failures) {
		t.Fatalf("ShardFailures: %v, %v", got, err)
	}
	if got, err := s.ShardClasses(ctx, 1); err != nil || !slices.Equal(got, classes) {
		t.Fatalf("ShardClasses: %v, %v", got, err)
	}

	// Job b finds job a's shard not done, and refuses its files.
	s.Bind(b)
	if st, err := s.ShardDone(ctx, 1); st.Done || !strings.Contains(st.Why, a.Fingerprint) || err != nil {
		t.Fatalf("ShardDone of another job's shard: %+v, %v", st, err)
	}
	_, err = s.ShardRows(ctx, 1)
	refused(t, "ShardRows of another job's", err, job.ErrBadData, jobstore.ShardClassesKey(1), a.Fingerprint, b.Fingerprint)
	_, err = s.ShardClasses(ctx, 1)
	refused(t, "ShardClasses of another job's", err, job.ErrBadData, jobstore.ShardClassesKey(1), a.Fingerprint, b.Fingerprint)

	// Job b computes the shard again: job a finds it not done.
	bRows, bFailures, _ := shardOf(b, 1)
	if err := s.WriteShard(ctx, 1, bRows[:2], bFailures, classes); err != nil {
		t.Fatal(err)
	}
	if st, err := s.ShardDone(ctx, 1); !st.Done || err != nil {
		t.Fatalf("ShardDone of job b's shard: %+v, %v", st, err)
	}
	s.Bind(a)
	if st, err := s.ShardDone(ctx, 1); st.Done || !strings.Contains(st.Why, b.Fingerprint) || err != nil {
		t.Fatalf("ShardDone of a shard that job b rewrote: %+v, %v", st, err)
	}

	// A late attempt of job b (a worker cut off from the server that
	// computed on, with other rows) cannot replace the published shard:
	// the rows stay the first attempt's, and the late files are removed.
	s.Bind(b)
	won, _ := s.ShardDone(ctx, 1)
	if err := s.WriteShard(ctx, 1, bRows, bFailures, classes); err != nil {
		t.Fatalf("a late attempt: %v", err)
	}
	if st, err := s.ShardDone(ctx, 1); !st.Done || st.Attempt != won.Attempt || err != nil {
		t.Fatalf("ShardDone after a late attempt: %+v, %v; want attempt %s", st, err, won.Attempt)
	}
	if got, err := s.ShardRows(ctx, 1); err != nil || !slices.Equal(got, bRows[:2]) {
		t.Fatalf("ShardRows after a late attempt: %d rows, %v; want the first attempt's 2", len(got), err)
	}
	keys, err := s.ShardKeys(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{jobstore.ShardClassesKey(1), jobstore.ShardFailuresKey(1, won.Attempt), jobstore.ShardRowsKey(1, won.Attempt)}
	slices.Sort(keys)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("shard 1's files after a late attempt: %v, want %v", keys, want)
	}
}

// testGroup writes partial moments, finds them done by their group
// fingerprint, reads them back, and removes a file whose header does not
// fit the shard.
func testGroup(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a, b := Job(t, "a"), Job(t, "b")
	s.Bind(a)
	const i, g = 2, 1 // the last shard (5 examples); the last group (1 checkpoint)
	n := int(a.Layout().Nth(i).Len())
	if done, err := s.GroupDone(ctx, i, g); done || err != nil {
		t.Fatalf("GroupDone of nothing: %v, %v", done, err)
	}
	write := func(examples int) {
		t.Helper()
		gw, err := s.NewGroupWriter(ctx, i, g, examples)
		if err != nil {
			t.Fatal(err)
		}
		for x := range examples {
			p := a.Shape.Pixels()
			rec := storage.MomentsRecord{Index: int64(20 + x), Target: int32(x % 3), Pred: -1, N: 1,
				Mean: make([]float64, p), M2: make([]float64, p), Logits: make([]score.Logits, 1), GradNorms: []float64{float64(x)}}
			if err := gw.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if err := gw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// An abandoned writer publishes nothing.
	gw, err := s.NewGroupWriter(ctx, i, g, n)
	if err != nil {
		t.Fatal(err)
	}
	gw.Abort()
	if done, err := s.GroupDone(ctx, i, g); done || err != nil {
		t.Fatalf("GroupDone after an aborted write: %v, %v", done, err)
	}
	write(n)
	if done, err := s.GroupDone(ctx, i, g); !done || err != nil {
		t.Fatalf("GroupDone: %v, %v", done, err)
	}
	if done, err := s.GroupDone(ctx, i, 0); done || err != nil {
		t.Fatalf("GroupDone of the other group: %v, %v", done, err)
	}
	// A write abandoned half-way leaves the file that was there.
	gw, err = s.NewGroupWriter(ctx, i, g, n)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Shape.Pixels()
	half := storage.MomentsRecord{Index: 20, Pred: -1, N: 1, Mean: make([]float64, p), M2: make([]float64, p), Logits: make([]score.Logits, 1), GradNorms: []float64{7}}
	if err := gw.Write(half); err != nil {
		t.Fatal(err)
	}
	gw.Abort()
	gr, err := s.OpenGroup(ctx, i, g, n)
	if err != nil {
		t.Fatal(err)
	}
	var rec storage.MomentsRecord
	for x := range n {
		if err := gr.Next(&rec); err != nil || rec.Index != int64(20+x) || rec.GradNorms[0] != float64(x) {
			t.Fatalf("record %d: %+v, %v", x, rec, err)
		}
	}
	if err := gr.End(); err != nil {
		t.Fatal(err)
	}
	gr.Close()

	// Job b's group of the same checkpoints' range is another file.
	s.Bind(b)
	if done, err := s.GroupDone(ctx, i, g); done || err != nil {
		t.Fatalf("GroupDone of another job's group: %v, %v", done, err)
	}
	_, err = s.OpenGroup(ctx, i, g, n)
	refused(t, "OpenGroup of a group never written", err, nil, jobstore.ShardGroupKey(i, b.GroupFingerprint(2, 3)))

	// A file of more examples than the shard has: removed, BadData.
	s.Bind(a)
	write(n + 1)
	_, err = s.OpenGroup(ctx, i, g, n)
	refused(t, "OpenGroup of a file that does not fit the shard", err, job.ErrBadData, "removed")
	if done, err := s.GroupDone(ctx, i, g); done || err != nil {
		t.Fatalf("GroupDone after the corrupt file was removed: %v, %v", done, err)
	}
	_, err = s.NewGroupWriter(ctx, i, 5, n)
	refused(t, "a group the job does not have", err, job.ErrBadJob, "group 5")
}

// testResult writes the merged classes and the parts, finishes (listing
// the parts, removing another job's stray one), and scans the result.
func testResult(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a, b := Job(t, "a"), Job(t, "b")
	s.Bind(a)
	_, err := s.Success(ctx)
	refused(t, "Success before Finish", err, nil, "no finished result")
	classes := []job.ClassRow{{Window: window.All, Class: 0, N: 3, Mean: 1, Std: 0.5}}
	if err := s.WriteClasses(ctx, classes, []job.FailureRow{{Index: 3, Kind: job.FailCorrupt}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Classes(ctx); err != nil || !slices.Equal(got, classes) {
		t.Fatalf("Classes: %v, %v", got, err)
	}
	var want []job.ScoreRow
	for i := range a.Shards {
		rows, _, _ := shardOf(a, i)
		if err := s.WritePart(ctx, i, rows); err != nil {
			t.Fatal(err)
		}
		want = append(want, rows...)
	}
	// A stray part of another job, beyond this job's shards.
	s.Bind(b)
	if err := s.WritePart(ctx, 7, want[:1]); err != nil {
		t.Fatal(err)
	}
	_, err = s.Classes(ctx)
	refused(t, "Classes of another job's", err, job.ErrBadData, jobstore.ClassesKey, a.Fingerprint, b.Fingerprint)
	s.Bind(a)
	parts, err := s.Finish(ctx, int64(len(want)), 1)
	if err != nil || len(parts) != a.Shards {
		t.Fatalf("Finish: %v, %v", parts, err)
	}
	for i, p := range parts {
		if p.Key != jobstore.PartKey(i) || p.Size <= 0 {
			t.Fatalf("part %d: %+v", i, p)
		}
	}
	done, err := s.Success(ctx)
	if err != nil || done.Fingerprint != a.Fingerprint || done.Rows != int64(len(want)) || done.Failures != 1 || !slices.Equal(done.Parts, parts) {
		t.Fatalf("Success: %+v, %v", done, err)
	}
	got, err := s.ReadScores(ctx)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ReadScores: %d rows, %v", len(got), err)
	}

	// The stray part was removed; a scan of job b's store refuses a's result.
	s.Bind(b)
	if err := s.Scan(ctx, func([]job.ScoreRow) error { return nil }); err == nil {
		t.Fatal("job b scanned job a's result")
	}
	// A part of another job under a key _SUCCESS lists: refused.
	if err := s.WritePart(ctx, 1, want[:2]); err != nil {
		t.Fatal(err)
	}
	s.Bind(nil)
	err = s.Scan(ctx, func([]job.ScoreRow) error { return nil })
	refused(t, "Scan of a part of another job", err, job.ErrBadData, jobstore.PartKey(1), a.Fingerprint, b.Fingerprint)
	s.Bind(a)
	if err := s.WritePart(ctx, 1, want[:2]); err != nil {
		t.Fatal(err)
	}
	err = s.Scan(ctx, func([]job.ScoreRow) error { return nil })
	refused(t, "Scan of a part with fewer rows", err, nil, "rows in the parts")
}

// testRemoveOutputs removes everything a job wrote, and lists what it
// removed, but not the exported models.
func testRemoveOutputs(t *testing.T, s *jobstore.Store) {
	ctx := t.Context()
	s = closed(t, s)
	a := Job(t, "a")
	if _, err := s.CreateJob(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteWatch(ctx, a); err != nil {
		t.Fatal(err)
	}
	s.Bind(a)
	if err := s.WriteIndex(ctx, indexRows(a)); err != nil {
		t.Fatal(err)
	}
	rows, failures, classes := shardOf(a, 0)
	if err := s.WriteShard(ctx, 0, rows, failures, classes); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePart(ctx, 0, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteModel(ctx, "abc", []byte("module")); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteModel(ctx, "abc", []byte("ignored")); err != nil {
		t.Fatal(err)
	}
	st, err := s.ShardDone(ctx, 0)
	if err != nil || !st.Done {
		t.Fatalf("ShardDone: %+v, %v", st, err)
	}
	var removed []string
	if err := s.RemoveOutputs(ctx, func(key string) { removed = append(removed, key) }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	want := []string{jobstore.JobKey, jobstore.PartKey(0), jobstore.IndexKey, jobstore.ShardClassesKey(0),
		jobstore.ShardFailuresKey(0, st.Attempt), jobstore.ShardRowsKey(0, st.Attempt), jobstore.WatchKey}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	if j, err := s.ReadJob(ctx); j != nil || err != nil {
		t.Fatalf("job.json after RemoveOutputs: %v, %v", j, err)
	}
	if st, err := s.ShardDone(ctx, 0); st.Done || err != nil {
		t.Fatalf("ShardDone after RemoveOutputs: %+v, %v", st, err)
	}
}
