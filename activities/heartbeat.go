package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// heartbeatWhile records a heartbeat every second until the returned
// function is called, so that long steps that report no progress of their
// own (listing a dataset of a million objects, merging ten thousand
// shards' files, waiting out a storage outage) are not taken for a dead
// worker. The SDK throttles what reaches the server.
func heartbeatWhile(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
