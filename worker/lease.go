package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrLeaseLost is the cause of an activity's context stopped by Leases: the
// server no longer holds the attempt for this worker.
var ErrLeaseLost = errors.New("lease lost")

// Leases stops the activities of a worker that has lost them. An attempt of
// an activity with a heartbeat timeout H is this worker's only while its
// heartbeats reach the server: the server times the attempt out H after the
// last heartbeat it recorded and gives the activity to another worker. The
// SDK cancels the activity's context when a heartbeat call fails or is
// answered that the attempt is gone; an activity that records no heartbeat
// makes no call, and a worker cut off from the server (a partition that
// still lets it reach object storage) would compute and write on until the
// link came back. Leases watches the heartbeat calls the worker's client
// makes (UnaryInterceptor) and stops an activity, its context cancelled
// with ErrLeaseLost as its cause, once H plus a quarter of H has passed
// since a heartbeat was last answered and no call sent in the last H is
// still waiting for its answer, or the server said the attempt is not
// found.
//
// It errs late, not early: the time counts from the answer, not the send,
// and a call in flight is left to the SDK, which fails it within 0.8 H (at
// most 5 s), so a slow link to the server (heartbeats answered a second or
// more after they are sent) does not stop an attempt the server still
// holds. A worker that stops late costs a little work; what it writes
// cannot replace a published shard (see docs/design.md).
//
// A Leases serves the workers of one client: dial the client with
// UnaryInterceptor, and give the Leases to Start in Config.Leases.
type Leases struct {
	mu   sync.Mutex
	held map[string]*lease // by task token
}

type lease struct {
	answered time.Time // when a heartbeat was last answered (or the attempt began)
	calls    int       // heartbeat calls waiting for their answer
	sent     time.Time // when the last of those was sent
	lost     error     // the server's answer that the attempt is gone
}

// NewLeases returns a Leases holding none.
func NewLeases() *Leases { return &Leases{held: map[string]*lease{}} }

const heartbeatMethod = "/temporal.api.workflowservice.v1.WorkflowService/RecordActivityTaskHeartbeat"

// UnaryInterceptor returns the gRPC interceptor that records which
// heartbeats of held attempts the server answered.
func (l *Leases) UnaryInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		hb, ok := req.(*workflowservice.RecordActivityTaskHeartbeatRequest)
		if method != heartbeatMethod || !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		key := string(hb.GetTaskToken())
		l.update(key, func(h *lease) { h.calls++; h.sent = time.Now() })
		err := invoker(ctx, method, req, reply, cc, opts...)
		l.update(key, func(h *lease) {
			h.calls--
			switch {
			case err == nil:
				h.answered = time.Now()
			// The SDK turns gRPC statuses into service errors outside
			// this interceptor: here NotFound is still a status.
			case status.Code(err) == codes.NotFound:
				h.lost = err
			}
		})
		return err
	}
}

// update changes the lease of a held attempt, if it is held.
func (l *Leases) update(key string, f func(*lease)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.held[key]; h != nil {
		f(h)
	}
}

// hold runs an attempt under its lease: ctx is cancelled, with
// ErrLeaseLost, once the lease is gone (see Leases).
func (l *Leases) hold(ctx context.Context, token []byte, timeout time.Duration, lost func(error), run func(context.Context) (any, error)) (any, error) {
	key := string(token)
	l.mu.Lock()
	l.held[key] = &lease{answered: time.Now()}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	expiry := timeout + timeout/4
	check := min(time.Second, timeout/4)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(check)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			l.mu.Lock()
			h := *l.held[key]
			l.mu.Unlock()
			var err error
			switch {
			case h.lost != nil:
				err = fmt.Errorf("%w: the server no longer holds this attempt (%v)", ErrLeaseLost, h.lost)
			case time.Since(h.answered) > expiry && (h.calls == 0 || time.Since(h.sent) > timeout):
				err = fmt.Errorf("%w: no heartbeat answered by the server for %s (heartbeat timeout %s): the server has given the attempt to another worker",
					ErrLeaseLost, time.Since(h.answered).Round(100*time.Millisecond), timeout)
			default:
				continue
			}
			lost(err)
			cancel(err)
			return
		}
	}()
	return run(ctx)
}

// leaseInterceptor runs a worker's activities that have a heartbeat
// timeout under their lease.
type leaseInterceptor struct {
	interceptor.WorkerInterceptorBase
	l *Leases
}

func (w *leaseInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &leased{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}, l: w.l}
}

type leased struct {
	interceptor.ActivityInboundInterceptorBase
	l *Leases
}

func (a *leased) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	info := activity.GetInfo(ctx)
	if info.HeartbeatTimeout <= 0 || len(info.TaskToken) == 0 {
		return a.Next.ExecuteActivity(ctx, in)
	}
	lost := func(err error) {
		activity.GetLogger(ctx).Warn("Stopping the activity: its lease is lost.", "Error", err)
	}
	return a.l.hold(ctx, info.TaskToken, info.HeartbeatTimeout, lost, func(ctx context.Context) (any, error) {
		return a.Next.ExecuteActivity(ctx, in)
	})
}
