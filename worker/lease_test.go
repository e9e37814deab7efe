package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// heartbeat sends one heartbeat of token through l's interceptor, answered
// with answer.
func heartbeat(l *Leases, token string, answer error) { slowHeartbeat(l, token, 0, answer) }

// slowHeartbeat sends one heartbeat of token through l's interceptor,
// answered with answer after d (a slow link to the server).
func slowHeartbeat(l *Leases, token string, d time.Duration, answer error) {
	req := &workflowservice.RecordActivityTaskHeartbeatRequest{TaskToken: []byte(token)}
	l.UnaryInterceptor()(context.Background(), heartbeatMethod, req, nil, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			time.Sleep(d)
			return answer
		})
}

// TestLeases: an attempt whose heartbeats are answered runs to its end,
// however slowly they are answered; one whose heartbeats stop being
// answered, or whose heartbeat call hangs, is stopped, with ErrLeaseLost,
// after the heartbeat timeout and a quarter; one the server no longer
// knows is stopped at once.
func TestLeases(t *testing.T) {
	const timeout = 400 * time.Millisecond
	run := func(l *Leases, token string, beat func(ctx context.Context)) (time.Duration, error) {
		start := time.Now()
		_, err := l.hold(context.Background(), []byte(token), timeout, func(error) {}, func(ctx context.Context) (any, error) {
			beat(ctx)
			return nil, context.Cause(ctx)
		})
		return time.Since(start), err
	}

	l := NewLeases()
	// Answered heartbeats every 50 ms for 1.5 s: never stopped.
	took, err := run(l, "alive", func(ctx context.Context) {
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
			heartbeat(l, "alive", nil)
		}
	})
	if err != nil || took < 1400*time.Millisecond {
		t.Fatalf("an attempt with answered heartbeats: stopped after %s: %v", took, err)
	}
	// A slow link, as the SDK heartbeats over it: each heartbeat sent 0.4
	// timeouts after the last was answered (the SDK waits its throttle
	// interval) and answered 0.5 timeouts after it was sent, so the server
	// hears one every 0.9 timeouts and holds the attempt, while an answer
	// comes 1.4 timeouts after the send of the last answered one: never
	// stopped. (A rule counting from sends stopped it.)
	took, err = run(l, "slow", func(ctx context.Context) {
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
			time.Sleep(timeout * 4 / 10)
			slowHeartbeat(l, "slow", timeout*5/10, nil)
		}
	})
	if err != nil || took < 1900*time.Millisecond {
		t.Fatalf("an attempt with slowly answered heartbeats: stopped after %s: %v", took, err)
	}
	// A heartbeat call that hangs past the timeout (a partition the SDK's
	// deadline does not end): stopped.
	took, err = run(l, "hung", func(ctx context.Context) {
		go slowHeartbeat(l, "hung", 10*timeout, nil)
		<-ctx.Done()
	})
	if !errors.Is(err, ErrLeaseLost) || took < timeout || took > 5*timeout {
		t.Fatalf("an attempt whose heartbeat call hangs: stopped after %s with %v; want ErrLeaseLost after about %s", took, err, timeout+timeout/4)
	}
	// Heartbeats that fail (a partition): stopped after 1.25 timeouts.
	took, err = run(l, "cut", func(ctx context.Context) {
		heartbeat(l, "cut", nil)
		for end := time.Now().Add(10 * time.Second); ctx.Err() == nil && time.Now().Before(end); {
			heartbeat(l, "cut", status.Error(codes.Unavailable, "cut"))
			time.Sleep(50 * time.Millisecond)
		}
	})
	if !errors.Is(err, ErrLeaseLost) || took < timeout || took > 5*timeout {
		t.Fatalf("an attempt cut off: stopped after %s with %v; want ErrLeaseLost after about %s", took, err, timeout+timeout/4)
	}
	// The server says the attempt is gone: stopped at the next check.
	took, err = run(l, "gone", func(ctx context.Context) {
		heartbeat(l, "gone", status.Error(codes.NotFound, "activity not found"))
		<-ctx.Done()
	})
	if !errors.Is(err, ErrLeaseLost) || took > timeout {
		t.Fatalf("an attempt the server lost: stopped after %s with %v", took, err)
	}
	if len(l.held) != 0 {
		t.Fatalf("leases still held after their attempts: %d", len(l.held))
	}
}
