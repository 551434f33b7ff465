package tiered

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec compresses L2 values. Each stored value starts with the codec's id
// byte, so edges with different codecs still read each other's entries.
type Codec string

// Codecs for L2 values.
const (
	CodecNone Codec = "none"
	CodecS2   Codec = "s2"
	CodecZstd Codec = "zstd"
)

const (
	idNone byte = 0
	idS2   byte = 1
	idZstd byte = 2
)

// minCompress is the smallest value worth compressing.
const minCompress = 256

// codec encodes and decodes L2 values.
type codec struct {
	id  byte
	enc *zstd.Encoder
	dec *zstd.Decoder
}

func newCodec(c Codec) (*codec, error) {
	// A zstd decoder is always ready: another edge may have written zstd.
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, fmt.Errorf("tiered: zstd decoder: %w", err)
	}
	cd := &codec{dec: dec}
	switch c {
	case CodecNone:
		cd.id = idNone
	case CodecS2, "":
		cd.id = idS2
	case CodecZstd:
		cd.id = idZstd
		cd.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("tiered: zstd encoder: %w", err)
		}
	default:
		return nil, fmt.Errorf("tiered: unknown codec %q (want none, s2 or zstd)", c)
	}
	return cd, nil
}

// encode returns the L2 form of b.
func (c *codec) encode(b []byte) []byte {
	if len(b) < minCompress || c.id == idNone {
		return append([]byte{idNone}, b...)
	}
	switch c.id {
	case idS2:
		out := make([]byte, 1+s2.MaxEncodedLen(len(b)))
		out[0] = idS2
		n := len(s2.Encode(out[1:], b))
		return out[:1+n]
	default:
		return c.enc.EncodeAll(b, []byte{idZstd})
	}
}

// decode returns the value held in an L2 form.
func (c *codec) decode(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("tiered: empty L2 value")
	}
	switch b[0] {
	case idNone:
		return b[1:], nil
	case idS2:
		out, err := s2.Decode(nil, b[1:])
		if err != nil {
			return nil, fmt.Errorf("tiered: s2 decode: %w", err)
		}
		return out, nil
	case idZstd:
		out, err := c.dec.DecodeAll(b[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("tiered: zstd decode: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("tiered: unknown L2 codec id %d", b[0])
}

func (c *codec) close() {
	c.dec.Close()
	if c.enc != nil {
		_ = c.enc.Close()
	}
}
