package tiered

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Concurrent L2 reads are batched: a few workers each take every read that
// is waiting and send them as one pipeline. An idle edge sends a batch of
// one (no added latency); a busy one pays one round trip and two syscalls
// per batch instead of per read, which is most of an L2 hit's cost.
const (
	getWorkers  = 4
	maxGetBatch = 128
)

type getRequest struct {
	ctx context.Context
	key string
	res chan getResult
}

type getResult struct {
	b   []byte
	err error // redis.Nil for a miss
}

var getResultChans = sync.Pool{New: func() any { return make(chan getResult, 1) }}

// getBatcher runs the read workers.
type getBatcher struct {
	reqs chan getRequest
	wg   sync.WaitGroup
}

func (r *l2) startBatcher(ctx context.Context) {
	r.batch = &getBatcher{reqs: make(chan getRequest, 4*maxGetBatch)}
	for i := 0; i < getWorkers; i++ {
		r.batch.wg.Add(1)
		go r.getWorker(ctx)
	}
}

func (r *l2) getWorker(ctx context.Context) {
	defer r.batch.wg.Done()
	batch := make([]getRequest, 0, maxGetBatch)
	cmds := make([]*redis.StringCmd, 0, maxGetBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-r.batch.reqs:
			batch = append(batch[:0], req)
		}
	drain:
		for len(batch) < maxGetBatch {
			select {
			case req := <-r.batch.reqs:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		cmds = cmds[:0]
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, req := range batch {
				cmds = append(cmds, p.Get(req.ctx, r.entryKey(req.key)))
			}
			return nil
		})
		for i, req := range batch {
			b, cerr := cmds[i].Bytes()
			if cerr == nil && err != nil && !errors.Is(err, redis.Nil) {
				cerr = err
			}
			req.res <- getResult{b: b, err: cerr}
		}
	}
}

// batchedGet reads one entry through the batcher.
func (r *l2) batchedGet(ctx context.Context, key string) ([]byte, error) {
	res := getResultChans.Get().(chan getResult)
	select {
	case r.batch.reqs <- getRequest{ctx: ctx, key: key, res: res}:
	case <-ctx.Done():
		getResultChans.Put(res)
		return nil, fmt.Errorf("redis get: %w", ctx.Err())
	}
	// The worker always answers (the channel is buffered), so waiting
	// here is bounded by the client's timeouts.
	out := <-res
	getResultChans.Put(res)
	return out.b, out.err
}
