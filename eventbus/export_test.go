package eventbus

// Abandon stops s the way a dying node stops: its connections break and
// nothing is cleaned up (Redis presence marks are left to expire).
func Abandon(s Subscriber) {
	switch s := s.(type) {
	case *RedisSubscriber:
		_ = s.close(false)
	case *StreamClient:
		s.abandon()
	}
}
