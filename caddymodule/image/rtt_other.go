//go:build !linux

package image

import (
	"net"
	"time"
)

// tcpRTT is unknown (0) outside Linux.
func tcpRTT(net.Conn) time.Duration { return 0 }
