package tiered

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Concurrent L2 reads are batched: one worker takes every read that is
// waiting and sends them as one pipeline, then the next batch while the
// reads that came meanwhile wait. An idle edge sends a batch of one (no
// added latency); a busy one pays one round trip and two syscalls on each
// side per batch instead of per read, which is most of an L2 hit's cost.
//
// One worker, not several: with four, an idle worker took each read as it
// came, so batches stayed at ~2.5 reads under bench-edge's load and an L2
// hit cost 16 µs of the edge's CPU and 4.6 µs of Redis's; with one, ~4.5
// to 5.6 reads per batch, 12–13 µs and 2.4–2.9 µs (BenchmarkL2Hit in
// caddymodule/cache, 2026-12-07, load average 18–30). A Cluster pipeline
// still reaches its masters in parallel (go-redis splits it by node).
// Before draining, the worker yields once, so that requests already
// runnable reach the queue and join the batch; with nothing else to run
// that returns at once.
const (
	getWorkers  = 1
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
		runtime.Gosched()
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
