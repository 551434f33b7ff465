package image

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// tcpRTT returns the kernel's smoothed round-trip time of a TCP
// connection (TCP_INFO), 0 when unknown. conn may be wrapped (TLS, …):
// wrappers with a NetConn method are unwrapped.
func tcpRTT(conn net.Conn) time.Duration {
	for range 8 {
		switch c := conn.(type) {
		case *net.TCPConn:
			raw, err := c.SyscallConn()
			if err != nil {
				return 0
			}
			var info *unix.TCPInfo
			_ = raw.Control(func(fd uintptr) {
				info, _ = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
			})
			if info == nil {
				return 0
			}
			return time.Duration(info.Rtt) * time.Microsecond
		case interface{ NetConn() net.Conn }:
			conn = c.NetConn()
		default:
			return 0
		}
	}
	return 0
}
