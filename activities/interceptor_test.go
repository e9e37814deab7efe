package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/interceptor"
)

// returnsCtxErr is an activity that stops when its context is done and
// returns the context's error, wrapped as an activity's write would.
type returnsCtxErr struct {
	interceptor.ActivityInboundInterceptorBase
}

func (*returnsCtxErr) ExecuteActivity(ctx context.Context, _ *interceptor.ExecuteActivityInput) (any, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("storage: write x.parquet: %w", ctx.Err())
}

// TestClassifierAddsCause: an activity stopped by its context says why the
// context was stopped (the SDK sets a cause: a failed heartbeat, a lost
// attempt), and stays retryable; a plain cancel adds nothing.
func TestClassifierAddsCause(t *testing.T) {
	c := &classifier{interceptor.ActivityInboundInterceptorBase{Next: &returnsCtxErr{}}}
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("heartbeat: rpc error: code = DeadlineExceeded"))
	_, err := c.ExecuteActivity(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "write x.parquet: context canceled (the activity was stopped: heartbeat: rpc error: code = DeadlineExceeded)") {
		t.Fatalf("error %v", err)
	}
	if !errors.Is(err, context.Canceled) || Classify(err) != err {
		t.Fatalf("the cause must keep the error as it was classified: %v", err)
	}

	ctx, stop := context.WithCancel(t.Context())
	stop()
	if _, err := c.ExecuteActivity(ctx, nil); err == nil || err.Error() != "storage: write x.parquet: context canceled" {
		t.Fatalf("a plain cancel: %v", err)
	}
}
