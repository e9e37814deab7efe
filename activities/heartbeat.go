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
// the server.
func heartbeatWhile(ctx context.Context) (stop func()) { return heartbeats(ctx).stop }

// beats records an activity's heartbeat every second, from a goroutine of
// its own, with the details last set. Work that reports progress sets it
// rather than calling activity.RecordHeartbeat: the SDK sends a heartbeat
// synchronously under a lock that RecordHeartbeat takes, so a computing
// goroutine that called it would wait a round trip to the server at every
// send (measured: 2 s of every 7 with 1 s each way). The heartbeats are
// recorded with the activity's own context: the SDK stops an activity
// whose heartbeat call fails, and a call made with a context cancelled by
// stop fails (which stopped shards at random when stop came mid-activity).
type beats struct {
	mu         sync.Mutex
	details    any // nil: none set
	quit, done chan struct{}
	once       sync.Once
}

// heartbeats starts recording ctx's heartbeats.
func heartbeats(ctx context.Context) *beats {
	b := &beats{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-b.quit:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				b.mu.Lock()
				details := b.details
				b.mu.Unlock()
				if details != nil {
					activity.RecordHeartbeat(ctx, details)
				} else {
					activity.RecordHeartbeat(ctx)
				}
			}
		}
	}()
	return b
}

// set makes details those of the next heartbeats; it does not wait. On a
// nil beats (a scorer outside an activity) it does nothing.
func (b *beats) set(details any) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.details = details
	b.mu.Unlock()
}

// stop ends the heartbeats and waits for a call under way to return.
func (b *beats) stop() {
	b.once.Do(func() { close(b.quit) })
	<-b.done
}
