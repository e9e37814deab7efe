package activities

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/vogscore/vog/engine"
	"github.com/vogscore/vog/job"
)

// Interceptor classifies the errors of every activity of a worker, in one
// place: errors that retrying cannot fix become non-retryable application
// errors of type job.BadDataType (they fail one shard) or job.BadInputType
// (they fail the job); others are returned as they are, to be retried.
// Workers, and tests that run activities, install it.
type Interceptor struct {
	interceptor.WorkerInterceptorBase
}

// InterceptActivity implements interceptor.WorkerInterceptor.
func (*Interceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &classifier{interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type classifier struct {
	interceptor.ActivityInboundInterceptorBase
}

func (c *classifier) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := c.Next.ExecuteActivity(ctx, in)
	return res, Classify(withCause(ctx, err))
}

// withCause adds to an activity's error why its context was stopped, where
// the SDK said: "context canceled" alone hides whether a heartbeat failed,
// the server lost the attempt, or the worker was shutting down.
func withCause(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	cause := context.Cause(ctx)
	if cause == nil || cause == ctx.Err() || errors.Is(err, cause) {
		return err
	}
	return fmt.Errorf("%w (the activity was stopped: %v)", err, cause)
}

// Classify turns errors that retrying cannot fix into non-retryable
// application errors; others are returned as they are.
func Classify(err error) error {
	var app *temporal.ApplicationError
	switch {
	case err == nil || errors.As(err, &app):
		return err
	case errors.Is(err, job.ErrBadData):
		return temporal.NewNonRetryableApplicationError(err.Error(), job.BadDataType, err)
	case errors.Is(err, job.ErrBadJob) || errors.Is(err, engine.ErrBadInput):
		return temporal.NewNonRetryableApplicationError(err.Error(), job.BadInputType, err)
	}
	return err
}
