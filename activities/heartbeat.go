package activities

import (
	"context"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatWhile records a heartbeat every second until the returned
// function is called, so that long steps that report no progress of their
// own (listing a dataset of a million objects, merging ten thousand
// shards' files, waiting out a storage outage, moving a file over a slow
// link) are not taken for a dead worker. The SDK throttles what reaches
// the server. The heartbeats are recorded with the activity's own context:
// the SDK stops an activity whose heartbeat call fails, and a call made
// with a context cancelled by stop fails (which stopped shards at random
// when stop came mid-activity).
func heartbeatWhile(ctx context.Context) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}
