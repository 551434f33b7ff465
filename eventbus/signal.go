package eventbus

// signal sends on a one-slot channel without blocking: a signal already
// pending absorbs this one.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
